"""Small JPEG thumbnails of catalogue images for the grid (never the full image)."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from indexer.files import uri_path
from indexer.images import ImageError, open_upright
from indexer.settings import ImageLimits

THUMB_SIDE = 256


def thumbnail(uri: str, limits: ImageLimits, side: int = THUMB_SIDE) -> bytes | None:
    """JPEG bytes of an upright, centre-cropped square thumbnail, or None when it cannot be read.
    The same limits as indexing apply, so a decompression bomb is refused here too."""
    if not uri.startswith("file://"):
        return None  # S3 images arrive with the S3 issue (presigned URLs / cached thumbnails)
    try:
        img, _, _ = open_upright(uri_path(uri).read_bytes(), limits, side)
    except (OSError, ImageError):
        return None
    out = io.BytesIO()
    ImageOps.fit(img, (side, side), Image.Resampling.BILINEAR).save(out, "JPEG", quality=85)
    return out.getvalue()
