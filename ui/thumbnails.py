"""Small JPEG thumbnails of catalogue images for the grid (never the full image)."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from indexer.files import uri_path
from indexer.images import to_rgb

THUMB_SIDE = 256


def thumbnail(uri: str, side: int = THUMB_SIDE) -> bytes | None:
    """JPEG bytes of an upright, centre-cropped square thumbnail, or None when it cannot be read."""
    if not uri.startswith("file://"):
        return None  # S3 images arrive with the S3 issue (presigned URLs / cached thumbnails)
    try:
        with Image.open(uri_path(uri)) as img:
            img.draft("RGB", (side, side))
            img = to_rgb(ImageOps.exif_transpose(img))
            img = ImageOps.fit(img, (side, side), Image.Resampling.BILINEAR)
            out = io.BytesIO()
            img.save(out, "JPEG", quality=85)
            return out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
