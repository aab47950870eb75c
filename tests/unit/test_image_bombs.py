"""Cost bombs: files small enough to pass every size limit that would cost minutes or gigabytes to
decode are refused before decoding, from their structure, or stopped by the decode deadline; and
an image is never grown before it is shrunk (memory checked from a child process's peak RSS)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from indexer.images import ImageError, decode
from indexer.settings import ImageLimits
from tests.conftest import save


@pytest.fixture
def photo(photos) -> Image.Image:
    return Image.open(photos / "coffee.jpg").convert("RGB")


def many_scans(photo: Image.Image, extra: int) -> bytes:
    """A progressive JPEG with `extra` more scans: copies of its last scan's header, with no data."""
    data = save(photo, "JPEG", progressive=True, quality=85)
    last = data.rindex(b"\xff\xda")
    header = data[last:last + 2 + int.from_bytes(data[last + 2:last + 4], "big")]
    return data[:-2] + header * extra + b"\xff\xd9"


def test_a_normal_progressive_jpeg_decodes(photo):
    assert decode(save(photo, "JPEG", progressive=True), ImageLimits()).pixels.shape == (224, 224, 3)


def test_thousands_of_scans_are_refused_before_decoding(photo):
    bomb = many_scans(photo, 4000)
    assert len(bomb) < 50 * 1024 * 1024  # under the byte limit
    with pytest.raises(ImageError, match=r"more than 100 scans, refused before decoding") as err:
        decode(bomb, ImageLimits())
    assert err.value.reason == "too many scans"


def test_a_flood_of_empty_segments_is_refused(photo):
    data = save(photo, "JPEG", quality=85)
    bomb = data[:2] + b"\xff\xe1\x00\x02" * 100_000 + data[2:]  # 100k empty APP1 segments after SOI
    with pytest.raises(ImageError, match=r"more than 2000 segments") as err:
        decode(bomb, ImageLimits())
    assert err.value.reason == "too many segments"


def test_a_long_thin_strip_is_refused_from_its_header():
    strip = save(Image.new("L", (40_000, 32), 128), "PNG")  # 1.3 MP, a few kB
    with pytest.raises(ImageError, match=r"40000x32 px, 1250 times longer than wide, over the 20:1 limit"):
        decode(strip, ImageLimits())


def test_the_decode_deadline_stops_a_decode(photo):
    data = save(photo.resize((2400, 1600)), "PNG")
    with pytest.raises(ImageError, match=r"decoding took longer than 1e-06 s and was stopped") as err:
        decode(data, ImageLimits(decode_seconds=1e-6))
    assert err.value.reason == "decode deadline"


def test_a_strip_is_never_grown_before_it_is_shrunk(tmp_path):
    """1,000,000 x 32 px allowed by the limits: grown to 224 high first it would need 7 GB."""
    script = textwrap.dedent("""
        import io, resource, sys
        from PIL import Image
        from indexer.images import decode
        from indexer.settings import ImageLimits
        buf = io.BytesIO()
        Image.new("L", (1_000_000, 32), 100).save(buf, "PNG")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        d = decode(buf.getvalue(), ImageLimits(max_aspect=1e6))
        assert d.pixels.shape == (224, 224, 3), d.pixels.shape
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grown_kib = int(out.stdout.strip())
    assert grown_kib < 400 * 1024, f"decoding grew the process by {grown_kib / 1024:.0f} MiB"


def test_draft_decoding_keeps_a_jpeg_small(photo):
    big = io.BytesIO()
    photo.resize((4000, 3000)).save(big, "JPEG", quality=80)
    d = decode(big.getvalue(), ImageLimits(), preview=480)
    assert (d.width, d.height) == (4000, 3000) and max(d.preview.shape[:2]) <= 480


def test_junk_and_fill_bytes_do_not_hide_a_flood_of_segments(photo):
    data = save(photo, "JPEG", quality=85)
    hidden = data[:2] + b"\x00" + b"\xff\xfe\x00\x02" * 2500 + data[2:]  # a junk byte, then 2500 COM segments
    with pytest.raises(ImageError, match=r"more than 2000 segments"):
        decode(hidden, ImageLimits())
    filled = data[:2] + b"\xff" * 5_000_000 + data[2:]  # 5 MB of fill bytes: walked in one step
    assert decode(filled, ImageLimits()).pixels.shape == (224, 224, 3)
