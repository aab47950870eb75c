"""Thumbnails and previews of catalogue images, made once and kept on disk; never the full image.

A file is named by the image's URI, etag and size asked for, so a new version of an image gets a
new thumbnail. S3 images are read with the app's own credentials (the bucket stays private).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from indexer.images import ImageError, open_upright
from indexer.sources.base import ReadError, Source, SourceItem, SourceUnavailable

THUMB_SIDE = 256  # grid squares
PREVIEW_SIDE = 1024  # the image page: the longer side


def render(data: bytes, limits, side: int, square: bool) -> bytes:
    """JPEG bytes: upright, a centre-cropped square of `side`, or the whole picture fit in `side`.
    The same limits as indexing apply, so a decompression bomb is refused here too."""
    img, _, _ = open_upright(data, limits, side if square else max(1, side // 2))
    if square:
        img = ImageOps.fit(img, (side, side), Image.Resampling.BILINEAR)
    else:
        img.thumbnail((side, side), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


class Thumbnails:
    def __init__(self, folder: Path, source: Source, limits) -> None:
        self.folder, self.source, self.limits = folder, source, limits

    def get(self, uri: str, etag: str | None, side: int = THUMB_SIDE, square: bool = True) -> bytes | None:
        """The cached JPEG, made on first use; None when the image cannot be read or decoded."""
        name = hashlib.sha256(f"{uri}\0{etag}\0{side}\0{square}".encode()).hexdigest()
        path = self.folder / name[:2] / f"{name}.jpg"
        try:
            return path.read_bytes()
        except OSError:
            pass
        try:
            data = render(self.source.read(SourceItem(uri=uri)).data, self.limits, side, square)
        except (ImageError, ReadError, SourceUnavailable, OSError):
            return None
        try:  # write-then-rename: a reader never sees half a file
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as tmp:
                tmp.write(data)
            os.replace(tmp.name, path)
        except OSError:
            pass  # a read-only cache still shows the picture
        return data

