"""Bytes -> an upright RGB model input, refusing what should not be decoded.

Decode is where the CPU time goes (12 MP JPEGs on one core: 4.2 images/s decoded whole, 52.6 in
draft mode): JPEGs are decoded with `Image.draft()` at the smallest DCT scale that still covers the
model input. Every mode is converted to RGB on purpose. Pillow's process-wide settings are left as
they are: the pixel limit of the settings (ImageLimits) is checked per decode, from the header.
"""

from __future__ import annotations

import io
import re
import struct
import time
import warnings
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from indexer.errors import InputError
from indexer.exif import PhotoMetadata, read_metadata
from indexer.settings import ImageLimits

# Pillow warns of what it reads past (corrupt EXIF in a TIFF, a palette's transparency): a damaged
# image is this module's to report, as a FAILED record or a label, never as Python text on a screen
warnings.filterwarnings("ignore", module=r"PIL\.")

FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
                 "GIF": "image/gif", "BMP": "image/bmp", "TIFF": "image/tiff", "HEIF": "image/heic"}
EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
WHITE = (255, 255, 255)


class ImageError(InputError):
    """The bytes are not an image pixdex will label; the message says why, for a person, and
    `reason` names the kind in a few words (reports count failures by it)."""

    def __init__(self, message: str, reason: str = "not an image") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # (size, size, 3) uint8: resized, centre-cropped, upright RGB
    width: int  # full-resolution width and height as displayed (after EXIF orientation)
    height: int
    format: str
    content_type: str
    preview: np.ndarray | None = None  # the whole picture, upright RGB, longest side <= `preview` (faces)
    metadata: PhotoMetadata = field(default_factory=PhotoMetadata)  # EXIF: when, with what, where


@cache
def _heif_support() -> bool:
    """Registers HEIC with Pillow (once) when pillow-heif is installed; whether it is."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def _looks_like_heic(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def check_size(size: int, limits: ImageLimits) -> None:
    if size == 0:
        raise ImageError("empty file (0 bytes)", "empty file")
    if size > limits.max_bytes:
        raise ImageError(f"too large: {_mb(size)}, over the {_mb(limits.max_bytes)} limit (PIXDEX_LIMITS__MAX_BYTES)",
                         "too large")


def decode(data: bytes, limits: ImageLimits, size: int = 224, preview: int = 0) -> DecodedImage:
    """Decode, orient and convert to RGB; resize the shorter side to `size` and centre-crop. With
    `preview`, also the whole picture with its longest side at most that (from the same decode:
    a JPEG's draft is already about that size)."""
    rgb, fmt, (w, h), metadata = _checked(data, limits, size, with_metadata=True)
    whole = preview_of(rgb, preview) if preview else None
    return DecodedImage(fit(rgb, size), w, h, fmt, CONTENT_TYPES[fmt], whole, metadata)


def preview_of(rgb: Image.Image, side: int) -> np.ndarray:
    """The whole picture with its longest side at most `side` (never grown; shrunk straight from the decode)."""
    scale = min(1.0, side / max(rgb.size))
    target = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return np.asarray(rgb if scale == 1.0 else rgb.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0))


def _too_many_pixels(w: int, h: int, limits: ImageLimits) -> ImageError:
    return ImageError(f"image is {w}x{h} ({w * h / 1e6:.0f} MP), over the {limits.max_pixels / 1e6:.0f} MP limit "
                      "(possible decompression bomb)", "decompression bomb")


def _size_past_ceiling(data: bytes) -> tuple[int, int]:
    """The size in the header of an image that Image.open refused as over Pillow's ceiling: the
    steps of Image.open (each format's plugin, where its check accepts the prefix) without the
    ceiling. Only the header is read."""
    for format_id in Image.ID:
        factory, accept = Image.OPEN[format_id]
        verdict = True if accept is None else accept(data[:16])
        if not verdict or isinstance(verdict, str):  # a str: the plugin's reason for refusing
            continue
        try:
            with factory(io.BytesIO(data), "") as img:
                return img.size
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error):
            continue
    return 0, 0


class _Late(Exception):
    """The decode deadline passed (raised through Pillow, which lets it by)."""


class _Timed(io.BytesIO):
    """The bytes, refusing to be read past a deadline: Pillow reads a block, decodes it, reads the
    next, so a decode that runs long is stopped at its next block."""

    def __init__(self, data: bytes, deadline: float) -> None:
        super().__init__(data)
        self.deadline = deadline

    def read(self, n: int | None = -1) -> bytes:
        if time.monotonic() > self.deadline:
            raise _Late
        return super().read(n)


JPEG_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # the marker after a scan's data
JPEG_FILL = re.compile(rb"\xff+")


def check_jpeg_structure(data: bytes, limits: ImageLimits) -> None:
    """Walk a JPEG's segments before decoding it and refuse more scans or segments than the
    limits (a 1 MB progressive JPEG of 4000 empty scans costs a minute to decode; 50 MB of empty
    APP1 segments 18 s). Reads headers by their lengths and skips scan data with one regex search,
    so the walk costs milliseconds whatever the file holds; what it cannot parse it leaves to Pillow."""
    pos, scans, segments = 2, 0, 0
    while pos + 4 <= len(data):  # every turn moves pos forward: at most len(data) turns, most far fewer
        if data[pos] != 0xFF:  # junk between segments, which libjpeg skips: so does this walk
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # a run of fill bytes, skipped in one step
            pos = JPEG_FILL.match(data, pos).end() - 1
            continue
        if marker == 0xD9:  # end of image
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # restart markers, TEM: no length
            pos += 2
            continue
        segments += 1
        if segments > limits.max_segments:
            raise ImageError(f"JPEG of more than {limits.max_segments} segments, refused before decoding "
                             "(PIXDEX_LIMITS__MAX_SEGMENTS)", "too many segments")
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:
            scans += 1
            if scans > limits.max_scans:
                raise ImageError(f"progressive JPEG of more than {limits.max_scans} scans, refused before decoding "
                                 "(PIXDEX_LIMITS__MAX_SCANS)", "too many scans")
            found = JPEG_ENTROPY_END.search(data, pos)
            if found is None:
                return
            pos = found.start()


def _identify(data: bytes, limits: ImageLimits, deadline: float = float("inf")) -> Image.Image:
    """The image, opened from its header only (nothing decoded yet), in a format pixdex takes."""
    heif = _heif_support()
    try:
        img = Image.open(_Timed(data, deadline))
    except Image.DecompressionBombError:
        # over Pillow's own ceiling (2x Image.MAX_IMAGE_PIXELS, which pixdex leaves as it is), so over
        # any max_pixels the settings accept: refused as open_upright refuses it, size and all
        raise _too_many_pixels(*_size_past_ceiling(data), limits) from None
    except UnidentifiedImageError:
        if _looks_like_heic(data) and not heif:
            raise ImageError("HEIC image, but HEIC support is not installed: pip install 'pixdex[heic]'",
                             "HEIC support not installed") from None
        if (known := _signature(data)) is not None:  # a known format's magic, but no header Pillow can read
            raise ImageError(f"{known} image whose header is truncated or corrupt", "truncated or corrupt") from None
        raise ImageError("not an image: the bytes are in no format pixdex decodes (JPEG, PNG, WebP, GIF, BMP, "
                         "TIFF, HEIC)") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        raise ImageError(f"not a readable image: the header is damaged ({exc})", "damaged header") from None
    if (img.format or "unknown") not in FORMATS:
        img.close()
        raise ImageError(f"{img.format or 'unknown'} images are not supported (supported: JPEG, PNG, WebP, GIF, "
                         "BMP, TIFF, HEIC)", "unsupported format")
    return img


SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
              (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def _signature(data: bytes) -> str | None:
    """The format whose magic bytes `data` starts with (WebP: RIFF....WEBP), else None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in SIGNATURES if data.startswith(magic)), None)


def image_format(data: bytes) -> str:
    """The format named by the header (JPEG, PNG, ...), without decoding; ImageError otherwise."""
    with _identify(data, ImageLimits()) as img:
        return img.format


def open_upright(data: bytes, limits: ImageLimits, size: int) -> tuple[Image.Image, str, tuple[int, int]]:
    """Checked against `limits`, decoded (JPEG at the smallest DCT scale whose shorter side is
    still >= `size`), EXIF-oriented and RGB. Returns it, the format, and the full oriented size."""
    return _checked(data, limits, size, with_metadata=False)[:3]  # thumbnails: no EXIF to read


def _checked(data: bytes, limits: ImageLimits, size: int,
             with_metadata: bool) -> tuple[Image.Image, str, tuple[int, int], PhotoMetadata]:
    check_size(len(data), limits)
    try:
        return _open_upright(data, limits, size, time.monotonic() + limits.decode_seconds, with_metadata)
    except _Late:
        raise ImageError(f"decoding took longer than {limits.decode_seconds:g} s and was stopped "
                         "(PIXDEX_LIMITS__DECODE_SECONDS)", "decode deadline") from None


def _open_upright(data: bytes, limits: ImageLimits, size: int, deadline: float, with_metadata: bool) -> tuple[
        Image.Image, str, tuple[int, int], PhotoMetadata]:
    if data[:2] == b"\xff\xd8":  # a JPEG: its structure first, before Pillow parses a single header
        check_jpeg_structure(data, limits)
    with _identify(data, limits, deadline) as img:
        fmt = img.format
        w, h = img.size
        if max(w, h) > limits.max_aspect * min(w, h):
            raise ImageError(f"image is {w}x{h} px, {max(w, h) / max(min(w, h), 1):.0f} times longer than wide, over "
                             f"the {limits.max_aspect:g}:1 limit (PIXDEX_LIMITS__MAX_ASPECT)", "aspect ratio")
        if w * h > limits.max_pixels:
            raise _too_many_pixels(w, h, limits)
        if min(w, h) < limits.min_side:
            raise ImageError(f"image is {w}x{h} px, under the {limits.min_side} px minimum side", "too small")
        if fmt in ("JPEG", "MPO"):
            # decode at 1/2, 1/4 or 1/8 scale, never below the model input on the shorter side
            scale = size / min(w, h)
            img.draft("RGB" if img.mode == "RGB" else None, (max(1, round(w * scale)), max(1, round(h * scale))))
        # from the headers already parsed: no second read of the bytes
        metadata = read_metadata(img) if with_metadata else PhotoMetadata()
        img.decodermaxblock = 16384  # the deadline is looked at before each block is decoded
        try:
            img.load()
            oriented = ImageOps.exif_transpose(img)
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"image data is truncated or corrupt ({exc})", "truncated or corrupt") from None
        if oriented.size != img.size:
            w, h = h, w
        return to_rgb(oriented), fmt, (w, h), metadata


def to_rgb(img: Image.Image) -> Image.Image:
    """Every Pillow mode to 8-bit RGB: transparency onto white, high bit depth scaled, not clipped."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if mode == "F":
            lo, top = float(arr.min(initial=0)), float(arr.max(initial=1))
            arr = arr - lo
            top = max(top - lo, 1e-6)
        gray = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def fit(img: Image.Image, size: int) -> np.ndarray:
    """The centre square (its side the shorter side) resized to `size` (bilinear), as uint8 HWC: the
    same pixels as resizing the shorter side to `size` and cropping, without ever growing the whole
    image first (a 1,000,000 x 32 strip would need gigabytes scaled up to 224 high)."""
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side),
                        reducing_gap=None)
    return np.asarray(square)
