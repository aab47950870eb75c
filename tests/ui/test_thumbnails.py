"""ui.thumbnails: small upright squares and previews, under the indexing limits, cached on disk."""

from __future__ import annotations

import io

from PIL import Image

from indexer.settings import ImageLimits
from indexer.sources.files import FileSource, file_uri
from tests.conftest import exif_rotated_jpeg, png_header_only
from ui.thumbnails import Thumbnails


def thumbs(tmp_path) -> Thumbnails:
    return Thumbnails(tmp_path / "cache", FileSource(ImageLimits()), ImageLimits())


def test_square_upright_thumbnail_made_once(tmp_path, photos):
    rotated = tmp_path / "rotated.jpg"
    rotated.write_bytes(exif_rotated_jpeg(Image.open(photos / "cat.png").convert("RGB")))
    cache = thumbs(tmp_path)
    thumb = Image.open(io.BytesIO(cache.get(file_uri(rotated), "etag1")))
    assert thumb.format == "JPEG" and thumb.size == (256, 256)
    [cached] = list((tmp_path / "cache").rglob("*.jpg"))
    rotated.unlink()  # the cache answers without the original
    assert cache.get(file_uri(rotated), "etag1") == cached.read_bytes()
    assert cache.get(file_uri(rotated), "etag2") is None  # a new version is made anew


def test_preview_keeps_the_aspect_ratio(tmp_path, photos):
    preview = Image.open(io.BytesIO(thumbs(tmp_path).get(file_uri(photos / "coffee.jpg"), None, 1024, square=False)))
    original = Image.open(photos / "coffee.jpg")
    assert max(preview.size) <= 1024
    assert abs(preview.width / preview.height - original.width / original.height) < 0.02


def test_bomb_or_missing_file_gets_no_thumbnail(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(30000, 30000))
    assert thumbs(tmp_path).get(file_uri(bomb), None) is None
    assert thumbs(tmp_path).get(file_uri(tmp_path / "missing.jpg"), None) is None
