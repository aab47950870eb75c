"""indexer.exif through indexer.images.decode: what real camera JPEGs say of themselves (the
KPhotoAlbum demo photos keep their EXIF), what Pillow writes from the test photos, and hostile
EXIF, which leaves a field empty with its reason and never fails the image."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, TiffImagePlugin

from indexer.exif import EXIF_IFD, GPS_IFD
from indexer.images import decode
from indexer.settings import ImageLimits

DATA = Path(__file__).resolve().parents[1] / "data"
R = TiffImagePlugin.IFDRational


def metadata(data: bytes):
    decoded = decode(data, ImageLimits(), 224)
    assert decoded.pixels.shape == (224, 224, 3)  # the image itself, always
    return decoded.metadata


@pytest.mark.parametrize(("name", "taken", "camera", "focal", "iso"), [
    ("jesper.jpg", datetime(2005, 12, 29, 23, 45, 22, tzinfo=UTC), "Canon EOS DIGITAL REBEL XT", 44.0, 400),
    ("anne_helene.jpg", datetime(2005, 7, 28, 5, 18, 48, tzinfo=UTC), "Canon EOS 20D", 72.0, 100),
    ("bar55.jpg", datetime(2006, 2, 11, 4, 22, 11, tzinfo=UTC), "OLYMPUS OPTICAL CO.,LTD C40Z,D40Z", 7.5, 144),
])
def test_real_camera_jpegs(name, taken, camera, focal, iso):
    m = metadata((DATA / "people" / name).read_bytes())
    assert (m.taken_at, m.camera, m.focal_length, m.iso) == (taken, camera, focal, iso)
    assert m.exposure_time and 0 < m.exposure_time < 1 and m.latitude is None
    assert "no time zone" in " ".join(m.problems)  # these cameras wrote no offset: the clock as it reads


def with_exif(fill) -> bytes:
    img = Image.open(DATA / "photos" / "coffee.jpg")
    exif = Image.Exif()
    fill(exif, exif.get_ifd(EXIF_IFD), exif.get_ifd(GPS_IFD))
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=90)
    return buf.getvalue()


def full(exif, sub, gps) -> None:
    exif[271], exif[272] = "Canon", "Canon EOS 80D"
    sub[36867], sub[36881] = "2019:05:03 14:20:00", "+02:00"
    sub[33434], sub[33437], sub[34855], sub[37386] = R(1, 250), R(28, 10), 400, R(50, 1)
    sub[42035], sub[42036] = "Canon", "EF50mm f/1.8 STM"
    gps[1], gps[2], gps[3], gps[4] = "N", (R(48, 1), R(51, 1), R(2946, 100)), "W", (R(2, 1), R(17, 1), R(40, 1))
    gps[5], gps[6] = b"\x00", R(35, 1)


def test_everything_a_camera_writes():
    m = metadata(with_exif(full))
    assert m.taken_at == datetime(2019, 5, 3, 12, 20, tzinfo=UTC)  # 14:20 at +02:00
    assert (m.camera, m.lens, m.focal_length, m.exposure_time, m.f_number, m.iso) == (
        "Canon EOS 80D", "Canon EF50mm f/1.8 STM", 50.0, 0.004, 2.8, 400)  # the lens's make once
    assert (m.latitude, m.longitude, m.altitude) == (48.8581833, -2.2944444, 35.0)
    assert m.problems == []


def test_no_exif_is_no_metadata_and_no_problem():
    m = metadata((DATA / "photos" / "coffee.jpg").read_bytes())
    assert m.taken_at is None and m.camera is None and m.problems == []


@pytest.mark.parametrize(("change", "empty", "reason"), [
    (lambda e, s, g: s.__setitem__(36867, "0000:00:00 00:00:00"), "taken_at", "date taken"),
    (lambda e, s, g: s.__setitem__(36867, "yesterday"), "taken_at", "no date"),
    (lambda e, s, g: s.__setitem__(36867, "1492:10:12 10:00:00"), "taken_at", "out of range"),
    (lambda e, s, g: g.__setitem__(2, R(48, 1)), "latitude", "GPS position malformed"),  # one number, not three
    (lambda e, s, g: g.__setitem__(2, (R(400, 1), R(0, 1), R(0, 1))), "latitude", "out of range"),
    (lambda e, s, g: g.__setitem__(1, "X"), "latitude", "GPS position malformed"),
    (lambda e, s, g: (e.__setitem__(271, "C" * 5000), e.__setitem__(272, "C" * 5000)), "camera", "longer than"),
    (lambda e, s, g: s.__setitem__(33437, R(1, 0)), "f_number", "f-number"),
    (lambda e, s, g: s.__setitem__(34855, "fast"), "iso", "ISO"),
])
def test_hostile_or_absurd_values_leave_the_field_empty_with_a_reason(change, empty, reason):
    def fill(exif, sub, gps):
        full(exif, sub, gps)
        change(exif, sub, gps)

    m = metadata(with_exif(fill))
    assert getattr(m, empty) is None
    assert reason in " ".join(m.problems), m.problems
    assert m.iso is not None or empty == "iso"  # the other fields are still read


def test_a_64_kb_maker_note_and_a_truncated_ifd():
    def note(exif, sub, gps):
        full(exif, sub, gps)
        sub[37500] = b"\x00" * 65_000  # MakerNote

    m = metadata(with_exif(note))
    assert m.camera == "Canon EOS 80D" and m.taken_at is not None
    good = with_exif(full)
    at = good.index(b"Exif\x00\x00")
    length = int.from_bytes(good[at - 2:at], "big")
    cut = bytearray(good)
    cut[at + 40:at - 2 + length] = b"\xff" * (length - 42)  # the IFDs overwritten past their first bytes
    m = metadata(bytes(cut))
    assert m.taken_at is None and m.latitude is None  # unreadable: left empty, the image still decoded


def test_control_characters_are_dropped_with_a_reason():
    """A hostile tester's photo: ESC sequences that clear the screen and turn it red, BEL, and a
    right-to-left override. What a terminal would obey is dropped; the words stay; NUL padding and
    whitespace are no problem."""
    def hostile(exif, sub, gps):
        full(exif, sub, gps)
        exif[271], exif[272] = "\x1b[2J\x1b[31mEVIL", "X100\x00\x00"
        del sub[42035]  # no lens make
        sub[42036] = "\u202eEF50mm\x07\tf/1.8\u2066\x9b".encode()  # non-ASCII: Pillow hands the bytes back

    m = metadata(with_exif(hostile))
    assert (m.camera, m.lens) == ("[2J[31mEVIL X100", "EF50mm f/1.8")
    assert sorted(p for p in m.problems if "control" in p) == [
        "camera make held 2 control characters (dropped)", "lens held 4 control characters (dropped)"]
    assert m.taken_at is not None and m.iso == 400  # the other fields are read as before
