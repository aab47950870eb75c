"""indexer.model.scenes: the scene words read off the embedding, how they join the classifier's
labels, and the shipped heads file (indexer/data/scene_heads.json) on real photos."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources

import numpy as np
import pytest

from indexer.errors import ModelError
from indexer.images import decode
from indexer.model import vocabulary
from indexer.model.labeller import Prediction
from indexer.model.scenes import SceneHeads
from indexer.settings import ImageLimits

WORDS = vocabulary.imagenet()
SHIPPED = resources.files("indexer.data").joinpath("scene_heads.json")


def heads_file(heads: dict, dim: int = 4, embedding: str = "test@0") -> bytes:
    return json.dumps({"embedding": embedding, "dim": dim, "heads": heads}).encode()


def unit(i: int, dim: int = 4) -> np.ndarray:
    e = np.zeros(dim, np.float32)
    e[i] = 1.0
    return e


# GIVEN heads of our own on a 4-dimensional embedding: dimension 0 says lake, 1 says forest
HEADS = SceneHeads.from_json(heads_file({
    "lake": {"threshold": 0.6, "bias": -2.0, "weights": [6.0, 0, 0, 0]},
    "forest": {"threshold": 0.6, "bias": -2.0, "weights": [0, 6.0, 0, 0]},
}))


def stored(embedding: np.ndarray, **seen) -> dict:
    words = replace(WORDS, scenes=HEADS)
    nothing = Prediction(classes=[], concepts=[], embedding=embedding, model_id="")
    return {lb.name: lb for lb in replace(nothing, **seen).labels(words)}


def test_a_word_is_stored_at_or_above_its_heads_threshold_with_the_heads_probability():
    assert HEADS.probabilities(unit(0)[None])[0, 0] == pytest.approx(1 / (1 + np.exp(-4.0)))
    assert HEADS.passing(unit(0)) == {"lake": pytest.approx(0.982, abs=1e-3)}
    assert HEADS.passing(unit(2)) == {}
    assert HEADS.passing(np.ones(1280, np.float32)) == {}  # another model's embedding means nothing to them
    assert stored(unit(2)) == {}


def test_a_scene_word_carries_its_parents_and_a_concept_its_own():
    forest = stored(unit(1))["forest"]
    assert forest.parents == ("tree", "nature", "landscape")  # vocabulary.toml [scenes.parents]
    lake = stored(unit(0))["lake"]
    assert set(lake.parents) >= {"water", "landscape"}  # a lake the heads see is water, as its classes' lake is
    assert lake.confidence == pytest.approx(0.982, abs=1e-3)


def test_a_concept_the_heads_find_becomes_a_parent_of_its_classes_and_keeps_the_higher_confidence():
    labels = stored(unit(0), classes=[("lakeshore", 0.3)], concepts=[("lake", 0.99)])
    assert "lake" in labels["lakeshore"].parents
    assert labels["lake"].confidence == pytest.approx(0.99)
    # without the heads, a lakeshore at 0.3 makes no lake: the concept's own threshold decides
    assert "lake" not in {lb.name for lb in replace(Prediction([("lakeshore", 0.3)], [("lake", 0.29)], unit(2), ""))
                          .labels(replace(WORDS, scenes=HEADS))}


@pytest.mark.parametrize(("raw", "message"), [
    (b"not json", "not a scene heads file"),
    (heads_file({"lake": {"threshold": 0.5, "bias": 0}}), "not a scene heads file"),
    (heads_file({"lake": {"threshold": 0.5, "bias": 0, "weights": [1.0, 2.0]}}), "needs 4 weights"),
    (heads_file({"lake": {"threshold": 1.5, "bias": 0, "weights": [1.0] * 4}}), "thresholds between 0 and 1"),
    (heads_file({"lake": {"threshold": 0.5, "bias": 0, "weights": [float("nan")] * 4}}), "finite"),
])
def test_a_broken_heads_file_is_a_model_error_naming_it(raw, message):
    with pytest.raises(ModelError, match=f"scene_heads.json: .*{message}"):
        SceneHeads.from_json(raw)


def test_a_head_for_a_word_the_vocabulary_does_not_know_is_a_model_error():
    taxonomy = json.loads(resources.files("indexer.data").joinpath("imagenet_taxonomy.json").read_text())
    unicorn = SceneHeads.from_json(heads_file({"unicorn": {"threshold": 0.5, "bias": 0, "weights": [1.0] * 4}}))
    with pytest.raises(ModelError, match=r"heads for words that are neither a class, a concept nor .*: unicorn"):
        vocabulary.Vocabulary.from_files(taxonomy, {}, scenes=unicorn)
    with pytest.raises(ModelError, match=r"\[scenes\] words that are already classes or concepts: alp"):
        vocabulary.Vocabulary.from_files(taxonomy, {"scenes": {"parents": {"alp": []}}})


def test_the_shipped_heads_read_the_default_models_embedding_and_name_known_words():
    heads = WORDS.scenes
    assert heads is not None and SHIPPED.is_file()
    assert heads.embedding.startswith("efficientnet-lite0@") and heads.weights.shape[1] == 1280
    assert {"tree", "sky", "indoor"} <= set(heads.names)
    assert all(WORDS.resolve(n) == n for n in heads.names)
    assert WORDS.resolve("trees") == "tree" and WORDS.resolve("woods") == "forest"
    assert WORDS.resolve("clouds") == "cloud" and WORDS.resolve("sunrise") == "sunset"


def test_the_shipped_heads_on_real_photos(labeller, photos):
    """A few clear cases only (the thresholds are chosen by scripts/train_scenes.py, measured by
    tests/bench/bench_labels.py): an outdoor mountain scene under a big sky, and indoor close-ups."""
    scenes = photos.parent / "scenes"
    paths = [scenes / "mountain.jpg", photos / "cat.png", photos / "coffee.jpg"]
    batch = np.stack([decode(p.read_bytes(), ImageLimits(), labeller.input_size).pixels for p in paths])
    mountain, cat, coffee = ({lb.name for lb in p.labels(labeller.vocabulary)} for p in labeller.predict(batch))
    assert "sky" in mountain
    assert not {"night", "snow", "indoor", "street"} & mountain
    for indoors in (cat, coffee):
        assert not {"sky", "cloud", "mountain", "lake", "forest", "field", "beach"} & indoors


def test_the_vocabulary_chooses_which_heads_store_words_and_how_much_stricter():
    only_lake = HEADS.chosen(["lake"], stricter=0.5)
    assert only_lake.names == ("lake",) and only_lake.thresholds[0] == pytest.approx(0.8)
    assert only_lake.passing(unit(1)) == {}  # forest's head is not used
    with pytest.raises(ModelError, match="no heads for unicorn"):
        HEADS.chosen(["unicorn"], 0.0)
    with pytest.raises(ModelError, match="stricter must be in"):
        HEADS.chosen(["lake"], 1.0)


def test_a_word_can_have_its_own_threshold_chosen_on_the_validation_set():
    # GIVEN lake's head at 0.98 on a lake (logit 4) and forest's at 0.5 on a third of a forest (logit 0)
    lake, third_forest = unit(0), unit(1) / 3 + unit(2) * np.sqrt(8 / 9)
    assert HEADS.passing(third_forest) == {}  # under forest's own 0.6
    # WHEN forest's threshold is set to 0.45 and lake's to 0.99, with every other threshold stricter
    chosen = HEADS.chosen(["lake", "forest"], stricter=0.5, thresholds={"forest": 0.45, "lake": 0.99})
    # THEN the set thresholds win over the trained ones and over `stricter`
    assert chosen.thresholds.tolist() == pytest.approx([0.99, 0.45])
    assert set(chosen.passing(third_forest)) == {"forest"} and chosen.passing(lake) == {}
    with pytest.raises(ModelError, match="thresholds for words not in \\[scenes\\] words: sky"):
        HEADS.chosen(["lake"], 0.0, {"sky": 0.5})
    with pytest.raises(ModelError, match=r"between 0 and 1: lake = 1\.5"):
        HEADS.chosen(["lake"], 0.0, {"lake": 1.5})


def test_a_head_for_a_class_stores_that_class_with_its_parents():
    # GIVEN a head for ImageNet's class valley (dimension 3), which the classifier reads only weakly
    valley = SceneHeads.from_json(heads_file({"valley": {"threshold": 0.6, "bias": -2.0, "weights": [0, 0, 0, 6.0]}}))
    words = replace(WORDS, scenes=valley)
    weak = Prediction(classes=[("valley", 0.1)], concepts=[], embedding=unit(3), model_id="")
    # WHEN the head sees a valley THEN the class is stored at the head's probability, a landscape
    labels = {lb.name: lb for lb in weak.labels(words)}
    assert labels["valley"].confidence == pytest.approx(0.982, abs=1e-3)
    assert {"landscape", "nature"} <= set(labels["valley"].parents)
    # and where it does not, the classifier's 0.1 stays under the class threshold: no valley
    assert "valley" not in {lb.name for lb in replace(weak, embedding=unit(0)).labels(words)}


@pytest.mark.parametrize(("scenes", "message"), [
    ({"words": ["lake"], "thresholds": {"lake": "low"}}, "must be numbers"),
    ({"words": ["lake"], "thresholds": ["lake"]}, "must be a table of word = number"),
    ({"words": ["lake"], "stricter": "x"}, "must be numbers"),
])
def test_a_scene_threshold_that_is_no_number_is_a_model_error(scenes, message):
    taxonomy = json.loads(resources.files("indexer.data").joinpath("imagenet_taxonomy.json").read_text())
    with pytest.raises(ModelError, match=message):
        vocabulary.Vocabulary.from_files(taxonomy, {"scenes": scenes}, scenes=HEADS)
