"""ui.thumbnails: small upright squares, under the same limits as indexing."""

from __future__ import annotations

import io

from PIL import Image

from indexer.files import file_uri
from indexer.settings import ImageLimits
from tests.conftest import exif_rotated_jpeg, png_header_only
from ui.thumbnails import thumbnail


def test_square_upright_thumbnail(tmp_path, photos):
    rotated = tmp_path / "rotated.jpg"
    rotated.write_bytes(exif_rotated_jpeg(Image.open(photos / "cat.png").convert("RGB")))
    thumb = Image.open(io.BytesIO(thumbnail(file_uri(rotated), ImageLimits())))
    assert thumb.format == "JPEG" and thumb.size == (256, 256)


def test_bomb_gets_no_thumbnail(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(30000, 30000))
    assert thumbnail(file_uri(bomb), ImageLimits()) is None
    assert thumbnail(file_uri(tmp_path / "missing.jpg"), ImageLimits()) is None
