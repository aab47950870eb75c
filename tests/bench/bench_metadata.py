"""What reading a photo's own metadata (indexer.exif) costs the decode, side by side in one run:
the 12-MP JPEG corpus of bench_index (made from the test photos, with the EXIF of a real camera
written into each, so there is something to read) decoded with and without it, in alternating
rounds; the medians and their ratio (goal: indexing within 3% with it on).

Run:  make bench   or   .venv/bin/python tests/bench/bench_metadata.py --n 64
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from bench_index import make_corpus

import indexer.images
from indexer.exif import PhotoMetadata
from indexer.images import decode
from indexer.settings import ImageLimits

CAMERA = Path(__file__).resolve().parents[1] / "data" / "people" / "jesper.jpg"  # a Canon's EXIF, intact


def with_exif(blob: bytes, exif: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(blob)).save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def rate(blobs: list[bytes]) -> float:
    limits = ImageLimits()
    t = time.perf_counter()
    for b in blobs:
        decode(b, limits, 224, 416)
    return len(blobs) / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=32, help="images (default 32)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    exif = Image.open(CAMERA).info["exif"]
    blobs = [with_exif(p.read_bytes(), exif) for p in sorted(make_corpus(args.n).glob("*.jpg"))]
    real = indexer.images.read_metadata
    on, off = [], []
    for _ in range(args.rounds):
        indexer.images.read_metadata = real
        on.append(rate(blobs))
        indexer.images.read_metadata = lambda img: PhotoMetadata()
        off.append(rate(blobs))
    indexer.images.read_metadata = real
    a, b = statistics.median(on), statistics.median(off)
    print(f"decode of {len(blobs)} 12-MP JPEGs with EXIF, images/s (median of {args.rounds} alternating rounds):")
    print(f"  metadata read   {a:7.1f}\n  metadata off    {b:7.1f}\n  ratio on/off    {a / b:7.3f}   goal: >= 0.97")


if __name__ == "__main__":
    main()
