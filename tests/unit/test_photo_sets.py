"""The labelled photo sets stay apart: what trains the scene heads, what checks them and what
measures the labels (tests/bench/*/README.md) never share a photo, and none comes from a package
the outside evaluation draws on. A photo added to the wrong manifest fails here, not in a figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SETS = {
    "validation": BENCH / "validation" / "photos.json",
    "training": BENCH / "training" / "photos.json",
    "holdout": BENCH / "training" / "holdout.json",
}
# the packages the outside evaluation draws on (tests/bench/training/README.md)
OUTSIDE = ("caer", "opencv-doc", "opencv-python", "lomiri-wallpapers", "plasma-workspace-wallpapers",
           "mate-backgrounds", "ultralytics", "imgaug", "matplotlib", "scikit-image", "imageio")
SCENE_WORDS = {"sky", "cloud", "sunset", "night", "snow", "water", "sea", "beach", "lake", "mountain", "landscape",
               "nature", "forest", "tree", "grass", "field", "flower", "street", "city", "building", "indoor",
               "coast", "cliff", "valley"}


def package(photo: dict) -> str:
    """`deb:NAME=VERSION` or `pypi:NAME==VERSION` -> NAME."""
    return photo["source"].split(":", 1)[1].split("=", 1)[0].lower()


@pytest.fixture(scope="module")
def sets() -> dict[str, list[dict]]:
    return {name: json.loads(path.read_text()) for name, path in SETS.items()}


def test_no_photo_is_in_two_sets(sets):
    seen: dict[str, str] = {}
    for name, photos in sets.items():
        for photo in photos:
            for key in (photo["id"], photo["sha256"]):
                assert key not in seen, f"{photo['id']} ({key[:16]}) is in {name} and in {seen[key]}"
                seen[key] = name


def test_the_heads_never_see_a_package_of_the_validation_set(sets):
    validation = {package(p) for p in sets["validation"]}
    for name in ("training", "holdout"):
        shared = sorted({package(p) for p in sets[name]} & validation)
        assert not shared, f"{name} uses validation packages: {shared}"


def test_no_set_draws_on_the_outside_evaluation(sets):
    for name, photos in sets.items():
        used = sorted({package(p) for p in photos if package(p).startswith(OUTSIDE)})
        assert not used, f"{name} uses packages of the outside evaluation: {used}"


@pytest.mark.parametrize("name", ["training", "holdout"])
def test_scene_photos_are_judged_against_the_scene_words_only(sets, name):
    for photo in sets[name]:
        assert {"id", "source", "file", "path", "sha256", "licence", "width", "height", "words"} <= photo.keys()
        assert len(photo["sha256"]) == 64 and photo["licence"].strip(), photo["id"]
        assert set(photo["words"]) <= SCENE_WORDS, f"{photo['id']}: {set(photo['words']) - SCENE_WORDS}"
