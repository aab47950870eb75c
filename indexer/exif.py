"""What a photo says about itself: when it was taken, with which camera and settings, and where.

Read from the image Pillow has already opened (no second read of the bytes): EXIF in JPEG, PNG,
WebP and TIFF (and HEIC through pillow-heif). Every field is read on its own and checked: a
malformed, truncated, hostile or absurd value (a date of zeros, a latitude of 400, a maker note
of 64 kB, text where a number belongs) leaves that field empty and says why in `problems`; it
never fails the image. Control characters in text (an ESC sequence in a camera's make) are
dropped, and `problems` says so.

The date taken is DateTimeOriginal with its OffsetTimeOriginal, else DateTimeDigitized with its
offset; never the file's time. Without an offset the camera's clock is kept as it reads, stored
as if it were UTC (its zone is unknown), and `problems` says so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import Image

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
MAKE, MODEL = 271, 272
DATE_TAKEN, DATE_DIGITIZED = 36867, 36868
OFFSET_TAKEN, OFFSET_DIGITIZED = 36881, 36882
EXPOSURE, F_NUMBER, ISO, FOCAL_LENGTH, LENS_MAKE, LENS_MODEL = 33434, 33437, 34855, 37386, 42035, 42036
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON, GPS_ALT_REF, GPS_ALT = 1, 2, 3, 4, 5, 6
MAX_TEXT = 128  # a camera or lens name longer than this is noise (or a maker note in the wrong tag)
YEARS = (1826, 2200)  # the first photograph; a clock far in the future is a wrong clock
# What a terminal obeys rather than shows, dropped from every text field: C0 and C1 controls (ESC
# sequences, BEL), DEL, and the bidi controls (U+202E shows "gpj.exe" as "exe.jpg"). Whitespace and
# the NUL padding cameras write become spaces, silently.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # a regex class's body: marks, embeddings, isolates
CONTROLS = re.compile(f"[\x01-\x08\x0e-\x1f\x7f-\x9f{BIDI_CONTROLS}]")


@dataclass
class PhotoMetadata:
    taken_at: datetime | None = None  # UTC
    camera: str | None = None  # "Canon EOS 80D": make and model, the make once
    lens: str | None = None
    focal_length: float | None = None  # mm
    exposure_time: float | None = None  # seconds
    f_number: float | None = None
    iso: int | None = None
    latitude: float | None = None  # degrees, north positive
    longitude: float | None = None  # degrees, east positive
    altitude: float | None = None  # metres above sea level
    problems: list[str] = field(default_factory=list)  # why a field present in the file was left empty or cleaned


def read_metadata(img: Image.Image) -> PhotoMetadata:
    """The metadata of an opened image; empty fields where it has none or where it is unusable."""
    out = PhotoMetadata()
    try:
        exif = img.getexif()
        base = dict(exif)
        sub = _ifd(exif, EXIF_IFD, out)
        gps = _ifd(exif, GPS_IFD, out)
    except Exception as exc:  # Pillow's EXIF parser on hostile bytes: no metadata, the image still counts
        out.problems.append(f"EXIF unreadable: {type(exc).__name__}")
        return out
    out.taken_at = _taken(sub, out)
    make, model = _text(base.get(MAKE), "camera make", out), _text(base.get(MODEL), "camera model", out)
    if model:
        out.camera = model if make and model.lower().startswith(make.split()[0].lower()) else " ".join(
            p for p in (make, model) if p)
    elif make:
        out.camera = make
    lens_make, lens = _text(sub.get(LENS_MAKE), "lens make", out), _text(sub.get(LENS_MODEL), "lens", out)
    out.lens = lens if not lens_make or (lens and lens.lower().startswith(lens_make.lower())) else (
        f"{lens_make} {lens}" if lens else None)
    out.focal_length = _number(sub.get(FOCAL_LENGTH), "focal length", out, 0.1, 5000)
    exposure = _number(sub.get(EXPOSURE), "exposure time", out, 1e-6, 3600)
    out.exposure_time = None if exposure is None else float(f"{exposure:.6g}")  # 1/160, not 0.0062500005
    out.f_number = _number(sub.get(F_NUMBER), "f-number", out, 0.5, 256)
    iso = sub.get(ISO)
    iso = iso[0] if isinstance(iso, tuple) and iso else iso
    iso_value = _number(iso, "ISO", out, 1, 10_000_000)
    out.iso = None if iso_value is None else int(iso_value)
    _gps(gps, out)
    return out


def _ifd(exif: Image.Exif, tag: int, out: PhotoMetadata) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(tag))
    except Exception as exc:  # a pointer past the end, a loop of IFDs
        out.problems.append(f"{'GPS' if tag == GPS_IFD else 'EXIF'} IFD unreadable: {type(exc).__name__}")
        return {}


def _text(value: Any, what: str, out: PhotoMetadata) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        out.problems.append(f"{what} is not text")
        return None
    value, dropped = CONTROLS.subn("", value.replace("\x00", " "))
    if dropped:
        out.problems.append(f"{what} held {dropped} control character{'s' if dropped != 1 else ''} (dropped)")
    text = " ".join(value.split())
    if len(text) > MAX_TEXT:
        out.problems.append(f"{what} longer than {MAX_TEXT} characters")
        return None
    return text or None


def _number(value: Any, what: str, out: PhotoMetadata, low: float, high: float) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # IFDRational, int, float
    except (TypeError, ValueError, ZeroDivisionError):
        out.problems.append(f"{what} is not a number")
        return None
    if not math.isfinite(number) or not low <= number <= high:
        out.problems.append(f"{what} out of range: {number:g}")
        return None
    return number


def _taken(sub: dict[int, Any], out: PhotoMetadata) -> datetime | None:
    for date_tag, offset_tag in ((DATE_TAKEN, OFFSET_TAKEN), (DATE_DIGITIZED, OFFSET_DIGITIZED)):
        raw = _text(sub.get(date_tag), "date taken", out)
        if raw is None:
            continue
        try:
            wall = datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            out.problems.append(f"date taken is no date: {raw[:19]!r}")
            continue
        if not YEARS[0] <= wall.year <= YEARS[1]:
            out.problems.append(f"date taken out of range: {wall.year}")
            continue
        offset = _offset(_text(sub.get(offset_tag), "time offset", out))
        if offset is None:
            out.problems.append("date taken has no time zone: the camera's clock is kept as UTC")
            return wall.replace(tzinfo=UTC)
        return wall.replace(tzinfo=offset).astimezone(UTC)
    return None


def _offset(text: str | None) -> timezone | None:
    """'+02:00' -> UTC+2; None for absent or malformed."""
    if not text or len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        hours, minutes = int(text[1:3]), int(text[4:6])
    except ValueError:
        return None
    if hours > 14 or minutes > 59:
        return None
    sign = 1 if text[0] == "+" else -1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _degrees(value: Any) -> float | None:
    """(degrees, minutes, seconds) rationals -> decimal degrees."""
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(v) and v >= 0 for v in (d, m, s)) or m >= 60 or s >= 60:
        return None
    return d + m / 60 + s / 3600


def _gps(gps: dict[int, Any], out: PhotoMetadata) -> None:
    if GPS_LAT not in gps and GPS_LON not in gps:
        return
    lat, lon = _degrees(gps.get(GPS_LAT)), _degrees(gps.get(GPS_LON))
    lat_ref, lon_ref = gps.get(GPS_LAT_REF), gps.get(GPS_LON_REF)
    if lat is None or lon is None or lat_ref not in ("N", "S") or lon_ref not in ("E", "W"):
        out.problems.append("GPS position malformed")
        return
    lat, lon = (-lat if lat_ref == "S" else lat), (-lon if lon_ref == "W" else lon)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        out.problems.append(f"GPS position out of range: {lat:g}, {lon:g}")
        return
    out.latitude, out.longitude = round(lat, 7), round(lon, 7)
    altitude = _number(gps.get(GPS_ALT), "GPS altitude", out, 0, 100_000)
    if altitude is not None:
        below = gps.get(GPS_ALT_REF) in (1, b"\x01")
        out.altitude = -altitude if below else altitude
