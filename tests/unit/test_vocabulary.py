"""indexer.model.vocabulary: the words people type mean the labels pixdex stores, and the reviewed
layer (vocabulary.toml) is checked when it is read."""

from __future__ import annotations

import json
import tomllib
from importlib import resources

import pytest

from indexer.errors import ModelError
from indexer.model import vocabulary
from indexer.model.vocabulary import Vocabulary

WORDS = vocabulary.imagenet()
TAX = WORDS.taxonomy


def under(concept: str) -> set[str]:
    return {n for n, ps in zip(TAX.names, TAX.parents, strict=True) if concept in ps}


@pytest.mark.parametrize(("typed", "label"), [
    ("cats", "cat"), ("Cat", "cat"), ("butterflies", "butterfly"), ("beaches", "beach"), ("dogs", "dog"),
    ("lakeside", "lakeshore"), ("seaside", "beach"), ("golden retriever", "Golden Retriever"),
    ("laptop", "laptop"), ("  Black   AND white ", "black and white"), ("people", "people"),
    ("mountains", "mountain"), ("puppy", "dog"), ("Écureuil", "Écureuil"),  # unknown: as typed
    ("churches", "church"), ("church building", "church building"),
])
def test_a_typed_word_means_its_label(typed, label):
    assert WORDS.resolve(typed) == label


@pytest.mark.parametrize(("concept", "members"), [
    ("mountain", {"alp", "volcano"}), ("beach", {"seashore", "sandbar"}), ("lake", {"lakeshore"}),
    ("butterfly", {"monarch butterfly", "red admiral butterfly", "ringlet butterfly"}),
    ("insect", {"monarch butterfly", "bee"}),
    ("flower", {"daisy"}), ("water", {"seashore", "lakeshore", "kayak"}), ("landscape", {"alp", "valley"}),
    ("snow", {"ski", "snowmobile"}), ("street", {"tram", "traffic light"}), ("city", {"tram"}),
    ("indoor", {"desk", "bookcase", "dining table"}), ("cup", {"espresso", "coffee mug"}),
    ("church", {"church building", "bell tower"}),
])
def test_scene_and_everyday_concepts_gather_their_classes(concept, members):
    assert members <= under(concept)


def test_reviewed_concepts_leave_out_what_they_except():
    assert "park bench" in under("furniture") and "park bench" not in under("indoor")


def test_dropped_concepts_are_never_labels():
    rules = tomllib.loads(resources.files("indexer.data").joinpath("vocabulary.toml").read_text())
    assert not set(rules["drop"]["concepts"]) & set(TAX.concepts)
    assert not {"natural depression", "instrumentality", "covering", "brake system"} & set(TAX.concepts)


def test_thresholds_stricter_for_broad_concepts():
    assert WORDS.threshold("animal", is_class=False) > WORDS.threshold("cat", is_class=False)
    assert WORDS.threshold("tabby cat", is_class=True) == WORDS.class_threshold


def _taxonomy() -> dict:
    return json.loads(resources.files("indexer.data").joinpath("imagenet_taxonomy.json").read_text())


@pytest.mark.parametrize(("rules", "message"), [
    ({"concepts": {"shore life": {"members": ["seashore", "mermaid"]}}}, "member 'mermaid'"),
    ({"concepts": {"alp": {"members": ["volcano"]}}}, "also a class name"),
    ({"concepts": {"a": {"members": ["b"]}, "b": {"members": ["a"]}}}, "contains itself"),
    ({"drop": {"concepts": ["no such concept"]}}, "dropped concepts that do not exist"),
    ({"thresholds": {"labels": {"unicorn": 0.5}}}, "thresholds for labels that do not exist: unicorn"),
    ({"aliases": {"nessie": "loch ness monster"}}, "alias 'nessie'"),
])
def test_a_bad_rule_is_a_model_error_naming_it(rules, message):
    with pytest.raises(ModelError, match=message):
        Vocabulary.from_files(_taxonomy(), rules)


