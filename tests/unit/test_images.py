"""indexer.images: every refusal names its reason; every mode arrives as upright RGB."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from indexer.images import ImageError, decode, to_rgb
from indexer.settings import ImageLimits
from tests.conftest import exif_rotated_jpeg, png_header_only, save, tricky_inputs

LIMITS = ImageLimits()


@pytest.mark.parametrize("name", ["empty.jpg", "notes.jpg", "truncated.jpg", "pixel.png", "bomb.png", "damaged.webp"])
def test_refusals_say_why(photos, name):
    data, reason = tricky_inputs(photos)[name]
    with pytest.raises(ImageError, match=reason):
        decode(data, LIMITS)


@pytest.mark.parametrize("name", ["cmyk.jpg", "sixteen.png", "animated.gif", "palette.png", "rotated.jpg"])
def test_unusual_modes_decode_to_rgb(photos, name):
    data, _ = tricky_inputs(photos)[name]
    out = decode(data, LIMITS)
    assert out.pixels.shape == (224, 224, 3) and out.pixels.dtype == np.uint8
    assert out.pixels.std() > 10  # a real picture, not a flat fill


def test_byte_and_pixel_limits_are_settings(photos):
    data = (photos / "coffee.jpg").read_bytes()
    with pytest.raises(ImageError, match=r"over the 0\.0 MB limit"):
        decode(data, ImageLimits(max_bytes=1000))
    with pytest.raises(ImageError, match=r"600x400 .* over the 0 MP limit"):
        decode(data, ImageLimits(max_pixels=100_000))
    with pytest.raises(ImageError, match="under the 500 px minimum side"):
        decode(data, ImageLimits(min_side=500))


def test_pixel_limit_is_ours_not_pillows():
    # 90 MP is over Pillow's built-in 89 MP bomb warning but within pixdex's 150 MP default: the
    # header passes the limit, and only the missing pixel data fails it
    with pytest.raises(ImageError, match="truncated or corrupt"):
        decode(png_header_only(10000, 9000), LIMITS)
    with pytest.raises(ImageError, match=r"30000x30000 \(900 MP\), over the 150 MP limit"):
        decode(png_header_only(30000, 30000), LIMITS)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "PNG", "WEBP", "GIF"])
def test_damaged_files_of_every_format_are_refused(photos, fmt):
    data = save(Image.open(photos / "coffee.jpg"), fmt)[:1000]
    with pytest.raises(ImageError, match=r"damaged|truncated or corrupt"):
        decode(data, LIMITS)


@pytest.mark.parametrize("fmt", ["TIFF", "PNG", "JPEG", "GIF", "WEBP"])
def test_a_format_cut_inside_its_header_is_truncated_not_unknown(photos, fmt):
    """A TIFF cut in half was 'in no format pixdex decodes' (test_cli: and no Pillow warning shows)."""
    data = save(Image.open(photos / "coffee.jpg"), fmt, **({"compression": "tiff_lzw"} if fmt == "TIFF" else {}))
    for cut in (len(data) // 2, 40):
        with pytest.raises(ImageError, match=r"damaged|truncated or corrupt") as refused:
            decode(data[:cut], LIMITS)
        assert "no format pixdex decodes" not in str(refused.value)


def test_heic_without_the_extra_says_how_to_get_it():
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\0" * 100
    with pytest.raises(ImageError, match=r"pixdex\[heic\]"):
        decode(heic, LIMITS)


def test_exif_orientation_applied(photos):
    upright = Image.open(photos / "cat.png").convert("RGB")
    rotated = decode(exif_rotated_jpeg(upright), LIMITS)
    straight = decode(save(upright, "JPEG", quality=92), LIMITS)
    assert (rotated.width, rotated.height) == upright.size
    diff = np.abs(rotated.pixels.astype(int) - straight.pixels.astype(int)).mean()
    assert diff < 3, f"rotated image decodes {diff:.1f} grey levels away from the upright one"


def test_jpeg_draft_keeps_model_resolution(photos):
    big = Image.open(photos / "coffee.jpg").resize((4000, 3000))
    out = decode(save(big, "JPEG", quality=90), LIMITS)
    assert (out.width, out.height) == (4000, 3000)  # the record reports the real size
    assert out.pixels.shape == (224, 224, 3)


def test_transparency_composited_on_white():
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    la = Image.new("LA", (8, 8), (0, 255))
    assert to_rgb(la).getpixel((0, 0)) == (0, 0, 0)


def test_sixteen_bit_scaled_not_clipped():
    img = Image.new("I", (8, 8), 32768).convert("I;16")
    assert to_rgb(img).getpixel((0, 0)) == (127, 127, 127)


def test_decoding_leaves_pillows_process_wide_limit_alone():
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError, match="over the 1 MP limit"):
        decode(png_header_only(2000, 1000), ImageLimits(max_pixels=1_000_000))
    assert before == Image.MAX_IMAGE_PIXELS and before is not None
