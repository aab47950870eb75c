"""indexer.model.properties on real photos: black and white, colours, panorama, orientation."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from indexer.images import decode
from indexer.model.properties import property_labels
from indexer.record import Source
from indexer.settings import ImageLimits


def labels_of(data: bytes) -> set[str]:
    d = decode(data, ImageLimits())
    found = property_labels(d.pixels, d.width, d.height)
    assert all(lb.source == Source.PROPERTY and lb.confidence == 1.0 for lb in found)
    return {lb.name for lb in found}


def jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def test_a_grayscale_photo_is_black_and_white(photos):
    assert "black and white" in labels_of((photos / "cameraman.jpg").read_bytes())


@pytest.mark.parametrize("name", ["cat.png", "coffee.jpg", "rocket.jpg"])
def test_colour_photos_are_not(photos, name):
    assert "black and white" not in labels_of((photos / name).read_bytes())


def test_a_colour_photo_made_grey_becomes_black_and_white(photos):
    grey = Image.open(photos / "coffee.jpg").convert("L").convert("RGB")  # an RGB file without colour
    assert "black and white" in labels_of(jpeg(grey))


def test_the_sky_of_the_rocket_photo_is_blue(photos):
    assert "blue" in labels_of((photos / "rocket.jpg").read_bytes())


def test_orientation_and_panorama_from_the_size(photos):
    img = Image.open(photos / "rocket.jpg").convert("RGB")
    w, h = img.size
    assert {"landscape orientation"} <= labels_of(jpeg(img)) and "panorama" not in labels_of(jpeg(img))
    strip = img.crop((0, h // 3, w, h // 3 + w // 3))  # 3:1, a panorama
    assert {"landscape orientation", "panorama"} <= labels_of(jpeg(strip))
    upright = img.rotate(90, expand=True)
    assert "portrait orientation" in labels_of(jpeg(upright))
    side = min(w, h)
    assert "square" in labels_of(jpeg(img.crop((0, 0, side, side))))
