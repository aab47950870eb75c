"""Shared fixtures: the real photos, the real model (loaded once), fresh SQLite catalogues."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.catalog import open_catalog
from indexer.labeller import Labeller, make_labeller
from indexer.settings import ModelSettings, Settings

PHOTOS = Path(__file__).parent / "data" / "photos"


@pytest.fixture(scope="session")
def photos() -> Path:
    return PHOTOS


@pytest.fixture(scope="session")
def labeller() -> Labeller:
    model = make_labeller(ModelSettings(device="cpu"))
    model.load()
    return model


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", device="cpu", decode_workers=2, batch_size=4)


@pytest.fixture
def catalog(settings: Settings):
    with open_catalog(settings.catalog) as cat:
        yield cat


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries almost no data (a decompression bomb header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def save(img: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def exif_rotated_jpeg(upright: Image.Image) -> bytes:
    """Pixels stored turned 90° counter-clockwise, with EXIF orientation 6 ("rotate 90° CW to view")."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=92, exif=exif.tobytes())


# name -> (bytes builder, expected: "LABELED" plus a label that must be top-1, or an error fragment)
def tricky_inputs(photos: Path) -> dict[str, tuple[bytes, str]]:
    cat = Image.open(photos / "cat.png").convert("RGB")
    coffee = Image.open(photos / "coffee.jpg")
    gray = Image.fromarray(np.asarray(Image.open(photos / "cameraman.jpg").convert("L"), dtype=np.int32) * 257, "I")
    frames = [cat, Image.new("RGB", cat.size, (0, 0, 255))]
    palette = coffee.convert("RGB").quantize(255)
    palette.info["transparency"] = 0
    return {
        "empty.jpg": (b"", "empty file"),
        "notes.jpg": (b"shopping list: milk, eggs\n" * 20, "not an image"),
        "truncated.jpg": ((photos / "coffee.jpg").read_bytes()[:20_000], "truncated or corrupt"),
        "pixel.png": (save(Image.new("RGB", (1, 1), "red"), "PNG"), "1x1 px"),
        "bomb.png": (png_header_only(30000, 30000), "decompression bomb"),
        "damaged.webp": (save(coffee, "WEBP")[:1000], "header is damaged"),
        "cmyk.jpg": (save(coffee.convert("CMYK"), "JPEG", quality=92), "espresso"),
        "sixteen.png": (save(gray.convert("I;16"), "PNG"), "tripod"),
        "animated.gif": (save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100), "cat"),
        "palette.png": (save(palette, "PNG", transparency=0), "espresso"),
        "rotated.jpg": (exif_rotated_jpeg(cat), "cat"),
    }


@pytest.fixture
def tricky_folder(tmp_path: Path, photos: Path) -> tuple[Path, dict[str, tuple[bytes, str]]]:
    folder = tmp_path / "tricky"
    folder.mkdir()
    cases = tricky_inputs(photos)
    for name, (data, _) in cases.items():
        (folder / name).write_bytes(data)
    return folder, cases
