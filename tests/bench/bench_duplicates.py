"""Where do near duplicates stop? Copies found and different photos grouped, per cosine threshold.

Every validation photo (tests/bench/validation/README.md) gets copies made as people make them:
`resized` (half the size), `small` (longest side 400 px), `q60` (re-encoded as JPEG at quality 60),
`mirrored` (flipped left to right) and `all` (half size, mirrored, quality 60). Each photo and each
copy is embedded as `pixdex index` embeds it (decode, the classifier's L2-normalised features,
float16 as the SQLite catalogue stores them; tests/bench/bench_similar.py's `embed_all`), and
compared by cosine, the score `pixdex duplicates` groups by.

Printed, per threshold: the share of each kind of copy whose cosine to its photo is at least that
(found), and the pairs of different photos that some photo or copy of each links at least that
(wrongly grouped), with the photos involved. Then the cosines of the different photos closest
to each other, and the copies furthest from their photo. The threshold is chosen here
(indexer/catalog/duplicates.py NEAR_THRESHOLD), never asserted in tests.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).parent))
from bench_labels import ROOT, _file, photos

from indexer.images import decode
from indexer.model.labeller import make_labeller
from indexer.settings import ImageLimits, ModelSettings

THRESHOLDS = np.round(np.arange(0.70, 0.991, 0.01), 2)


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _scaled(img: Image.Image, factor: float) -> Image.Image:
    return img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))),
                      Image.Resampling.LANCZOS)


# kind -> the copy's bytes from the upright original
COPIES: dict[str, Callable[[Image.Image], bytes]] = {
    "resized": lambda img: _jpeg(_scaled(img, 0.5), 90),
    "small": lambda img: _jpeg(_scaled(img, 400 / max(img.size)), 90),
    "q60": lambda img: _jpeg(img, 60),
    "mirrored": lambda img: _jpeg(ImageOps.mirror(img), 90),
    "all": lambda img: _jpeg(ImageOps.mirror(_scaled(img, 0.5)), 60),
}


def copies_of(path: Path) -> dict[str, bytes]:
    """The photo itself and each copy of it, as bytes."""
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        upright = ImageOps.exif_transpose(img).convert("RGB")
    return {"photo": data, **{kind: make(upright) for kind, make in COPIES.items()}}


def embed(blobs: list[bytes], cache: Path | None) -> np.ndarray:
    """(N, D) float32 embeddings of image bytes, as the pipeline stores them; kept in `cache` by
    the bytes' sha256 per weights and input size."""
    labeller = make_labeller(ModelSettings(device="cpu", faces=False))  # faces do not touch the embedding
    labeller.load()
    key = f"{labeller.weights_hash}@{labeller.input_size}"
    stored = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    stored = stored if stored.get("key") == key else {"key": key, "images": {}}
    hashes = [hashlib.sha256(b).hexdigest() for b in blobs]
    todo = [i for i, h in enumerate(hashes) if h not in stored["images"]]
    started = time.perf_counter()
    for start in range(0, len(todo), 16):
        part = todo[start:start + 16]
        pixels = np.stack([decode(blobs[i], ImageLimits(), labeller.input_size, 0).pixels for i in part])
        _, emb = labeller.probabilities(pixels)
        for i, e in zip(part, emb, strict=True):
            stored["images"][hashes[i]] = e.astype(np.float16).astype(np.float32).tolist()  # float16: exact in JSON
    if cache and todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(stored))
    print(f"{len(blobs)} images ({len(todo)} embedded now, in {time.perf_counter() - started:.1f}s)", file=sys.stderr)
    return np.stack([np.asarray(stored["images"][h], dtype=np.float16).astype(np.float32) for h in hashes])


def scale(n: int, dim: int = 1280) -> None:
    """`pixdex duplicates`' work (indexer.catalog.duplicates.find) on a SQLite catalogue of `n`
    synthetic records: non-negative unit vectors like the classifier's (cosine about 0.64 between
    two), 1% of them near copies of another (cosine about 0.97) and 1% exact ones. Prints the time
    to read and to compare, and the most memory it allocated at once (tracemalloc)."""
    import tempfile
    import tracemalloc

    from indexer.catalog import open_catalog
    from indexer.catalog.duplicates import find
    from indexer.record import Label, Record, Status

    rng = np.random.default_rng(18)
    with tempfile.TemporaryDirectory() as tmp, open_catalog(f"sqlite:///{tmp}/scale.db") as cat:
        started = time.perf_counter()
        for start in range(0, n, 2000):
            vectors = np.abs(rng.standard_normal((min(2000, n - start), dim))).astype(np.float32)
            records = []
            for i, v in enumerate(vectors, start):
                if i % 100 == 1:  # a near copy of the one before
                    v = records[-1].embedding + 0.012 * np.abs(rng.standard_normal(dim)).astype(np.float32)
                if i % 100 == 2:  # an exact copy of the one before
                    v = records[-1].embedding
                digest = records[-1].content_hash if i % 100 == 2 else f"{i:064x}"
                records.append(Record(f"file:///synthetic/{i}.jpg", Status.LABELED, model_id="m@1",
                                      labels=[Label("x", 0.5)], embedding=v / np.linalg.norm(v), content_hash=digest))
            cat.upsert_many(records)
        print(f"{n} synthetic records written in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        stages: dict[str, float] = {}

        def progress(stage: str, done: int, total: int) -> None:
            stages.setdefault(stage, time.perf_counter())

        tracemalloc.start()  # numpy's arrays are traced too
        started = time.perf_counter()
        found = find(cat, progress=progress)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    reading = stages.get("comparing", time.perf_counter()) - started
    print(f"{n} records: {len(found.exact)} exact groups, {len(found.near)} near groups in {seconds:.1f}s "
          f"(reading {reading:.1f}s, comparing {seconds - reading:.1f}s); at most {peak:.0f} MiB allocated by it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "validation" / "duplicates-embeddings.json",
                        help="embeddings per image (default var/validation/duplicates-embeddings.json)")
    parser.add_argument("--show", type=int, default=12, help="closest different photos and furthest copies to list")
    parser.add_argument("--scale", type=int, metavar="N",
                        help="instead: time pixdex duplicates' work over N synthetic records (memory too)")
    args = parser.parse_args()
    if args.scale:
        scale(args.scale)
        return
    manifest = photos()
    blobs, owner, kind_of = [], [], []
    for i, photo in enumerate(manifest):
        for kind, data in copies_of(_file(photo)).items():
            blobs.append(data)
            owner.append(i)
            kind_of.append(kind)
    owner_a, kind_a = np.array(owner), np.array(kind_of)
    emb = embed(blobs, args.cache)
    n = len(manifest)
    originals = np.flatnonzero(kind_a == "photo")  # in manifest order
    # a copy against its own photo
    to_photo = np.einsum("ij,ij->i", emb, emb[originals[owner_a]])
    # different photos: the best cosine between any image of one and any image of the other
    cos = emb @ emb.T
    best = np.full((n, n), -1.0, dtype=np.float32)
    np.maximum.at(best, (owner_a[:, None], owner_a[None, :]), cos)  # (N, N) over all images, per photo pair
    np.fill_diagonal(best, -1.0)
    photo_only = cos[np.ix_(originals, originals)].copy()
    np.fill_diagonal(photo_only, -1.0)
    upper = np.triu_indices(n, 1)

    print(f"{n} photos, {len(blobs) - n} copies ({', '.join(COPIES)}), {len(upper[0])} pairs of different photos")
    for kind in COPIES:
        c = to_photo[kind_a == kind]
        print(f"  {kind:<9} to its photo: min {c.min():.3f}  p5 {np.percentile(c, 5):.3f}  "
              f"median {np.median(c):.3f}")
    pc = photo_only[upper]
    print(f"  different photos (photo to photo): max {pc.max():.3f}  p99.9 {np.percentile(pc, 99.9):.3f}  "
          f"p99 {np.percentile(pc, 99):.3f}")
    print(f"\n{'cosine':>6} | found: " + " ".join(f"{k:>8}" for k in COPIES)
          + " | wrongly grouped: photo pairs (any copy)  photo pairs (photos only)  photos")
    for t in THRESHOLDS:
        found = [(to_photo[kind_a == k] >= t).mean() for k in COPIES]
        pairs = best[upper] >= t
        plain = pc >= t
        involved = len({int(x) for x in np.concatenate([upper[0][pairs], upper[1][pairs]])})
        print(f"{t:6.2f} |        " + " ".join(f"{f:8.0%}" for f in found)
              + f" | {int(pairs.sum()):>38} {int(plain.sum()):>26} {involved:>7}")

    print("\ndifferent photos closest to each other (best image of each):")
    order = np.argsort(-best[upper])[:args.show]
    for o in order:
        i, j = upper[0][o], upper[1][o]
        print(f"  {best[i, j]:.3f} (photos {photo_only[i, j]:.3f})  {manifest[i]['id']:<28} {manifest[j]['id']}")
    print("\ncopies furthest from their photo:")
    copies = np.flatnonzero(kind_a != "photo")
    for c in copies[np.argsort(to_photo[copies])][:args.show]:
        print(f"  {to_photo[c]:.3f}  {kind_a[c]:<9} {manifest[owner_a[c]]['id']}")


if __name__ == "__main__":
    main()
