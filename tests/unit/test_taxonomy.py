"""indexer.model.taxonomy: parent concepts people search for find every class they should."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from indexer.model.taxonomy import Taxonomy

TAX = Taxonomy.imagenet()
NAMES = list(TAX.names)


def classes_under(concept: str) -> set[str]:
    return {n for n, ps in zip(TAX.names, TAX.parents, strict=True) if concept in ps}


def test_class_names_unique_and_readable():
    assert len(set(NAMES)) == 1000
    assert {"tiger cat", "Egyptian cat", "tabby cat", "espresso", "missile", "projectile", "tripod"} <= set(NAMES)
    assert not [n for n in NAMES if n.startswith(("a ", "an "))]


def test_every_cat_class_is_a_cat():
    assert {"tabby cat", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"} <= classes_under("cat")


def test_every_dog_breed_is_a_dog():
    # ImageNet classes 151..268 are the dog breeds
    breeds = set(NAMES[151:269])
    assert len(breeds) == 118
    assert breeds <= classes_under("dog")
    assert "grey wolf" not in classes_under("dog")


@pytest.mark.parametrize(("concept", "members"), [
    ("vehicle", {"sports car", "moped", "motor scooter", "mountain bike", "tandem bicycle", "container ship",
                 "kayak", "school bus", "trolleybus", "airliner"}),
    ("bird", {"goldfinch", "bald eagle", "flamingo", "king penguin"}),
    ("fish", {"goldfish", "great white shark", "clownfish"}),
    ("food", {"pizza", "bagel", "espresso", "banana"}),
    ("fruit", {"strawberry", "banana", "lemon", "pineapple", "Granny Smith apple"}),
    ("musical instrument", {"acoustic guitar", "violin", "grand piano", "drum", "saxophone"}),
    ("furniture", {"rocking chair", "desk", "bookcase", "couch", "wardrobe"}),
    ("coffee", {"espresso"}),
])
def test_everyday_concepts(concept, members):
    assert members <= classes_under(concept)


def test_abstract_roots_pruned():
    for root in ("entity", "physical entity", "object", "whole", "artifact", "organism", "living thing",
                 "instrumentality", "placental", "chordate", "vertebrate"):
        assert root not in TAX.concepts


def test_membership_sums_descendants():
    m = TAX.membership
    cat = TAX.concepts.index("cat")
    assert m[:, cat].sum() == len(classes_under("cat"))


def test_generated_file_is_committed():
    data = json.loads(resources.files("indexer.data").joinpath("imagenet_taxonomy.json").read_text())
    assert data["classes"][285] == {"index": 285, "wnid": "n02124075", "name": "Egyptian cat", "synonyms": [],
                                    "parents": list(TAX.parents[285])}
    lakeshore = next(c for c in data["classes"] if c["name"] == "lakeshore")
    assert lakeshore["synonyms"] == ["lakeside"]  # WordNet's other lemmas: words people type


def test_a_container_is_no_boat_and_a_railcar_no_car():
    # WordNet's "vessel" is a ship and a container; "car" an automobile and a railway car
    assert not {"coffee mug", "bucket", "bathtub", "beer bottle", "ladle"} & classes_under("boat")
    assert {"kayak", "container ship", "gondola", "fireboat"} <= classes_under("boat")
    assert "freight car" not in classes_under("car") and "sports car" in classes_under("car")


def test_labels_file_with_parents(tmp_path):
    f = tmp_path / "moths.txt"
    f.write_text("# my moths\nluna moth: moth, insect\natlas moth: moth, insect\n\nnot a moth\n")
    tax = Taxonomy.from_labels_file(f)
    assert tax.names == ("luna moth", "atlas moth", "not a moth")
    assert tax.concepts == ("insect", "moth")
    assert tax.concept_parents["moth"] == ("insect",)


def test_labels_file_errors(tmp_path):
    f = tmp_path / "dup.txt"
    f.write_text("a\na\n")
    with pytest.raises(ValueError, match="unique"):
        Taxonomy.from_labels_file(f)
    f.write_text("\n# nothing\n")
    with pytest.raises(ValueError, match="no class names"):
        Taxonomy.from_labels_file(f)
