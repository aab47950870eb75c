"""Where should "Similar images" stop? Precision of embedding neighbours per cosine cutoff.

Every validation photo (tests/bench/validation/README.md) is embedded as `pixdex index` embeds it
(decode, then the classifier's L2-normalised pooled features, stored as float16 like the SQLite
catalogue does), and every pair gets its cosine, the score `Catalog.similar` returns. A pair is
"alike" when the two photos share a search word from photos.json; words that more than
--generic of the photos have (sky, nature...) say little and are ignored.

Printed, per cutoff from 0.20 to 0.80: how many pairs score at least that and the share of them
that are alike; what a Similar list of k=8 keeps (photos left with a neighbour, neighbours per
photo, the share of them alike); then the lowest cutoff where pairs above it are alike at least
--goal of the time. The cutoff is chosen here (ui/image.py SIMILAR_CUTOFF), never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_labels import ROOT, _file, photos

from indexer.images import decode
from indexer.model.labeller import make_labeller
from indexer.settings import ImageLimits, ModelSettings

CUTOFFS = np.round(np.arange(0.20, 0.801, 0.05), 2)


def embed_all(manifest: list[dict], cache: Path | None) -> np.ndarray:
    """(N, D) float32 embeddings, as the pipeline stores them (Prediction.embedding, float16 in the
    SQLite catalogue). Kept in `cache` per weights and input size."""
    settings = ModelSettings(device="cpu", faces=False)  # faces do not touch the embedding
    labeller = make_labeller(settings)
    labeller.load()
    key = f"{labeller.weights_hash}@{labeller.input_size}"
    stored = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    stored = stored if stored.get("key") == key else {"key": key, "photos": {}}
    out, started, fresh = [], time.perf_counter(), 0
    for photo in manifest:
        got = stored["photos"].get(photo["sha256"])
        if got is None:
            d = decode(_file(photo).read_bytes(), ImageLimits(), labeller.input_size, 0)
            _, emb = labeller.probabilities(d.pixels[None].copy())
            got = emb[0].astype(np.float16).astype(np.float32).tolist()  # float16 is exact in JSON
            stored["photos"][photo["sha256"]] = got
            fresh += 1
        out.append(np.asarray(got, dtype=np.float16).astype(np.float32))
    if cache and fresh:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(stored))
    print(f"{len(out)} photos ({fresh} embedded now, in {time.perf_counter() - started:.1f}s)", file=sys.stderr)
    return np.stack(out)


def truth(manifest: list[dict], generic: float) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """(N, N) bool: the photos share a word other than the generic ones; and those ignored."""
    n = len(manifest)
    counts: dict[str, int] = {}
    for p in manifest:
        for w in set(p["words"]):
            counts[w] = counts.get(w, 0) + 1
    ignored = sorted(((w, c) for w, c in counts.items() if c > generic * n), key=lambda wc: -wc[1])
    drop = {w for w, _ in ignored}
    words = [set(p["words"]) - drop for p in manifest]
    alike = np.array([[bool(a & b) for b in words] for a in words])
    np.fill_diagonal(alike, False)
    return alike, ignored


def _pct(x: float) -> str:
    return "-" if np.isnan(x) else f"{x:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", type=int, default=8, help="neighbours a Similar list asks for (ui/image.py: 8)")
    parser.add_argument("--goal", type=float, default=0.6, help="precision the recommended cutoff must reach")
    parser.add_argument("--generic", type=float, default=0.3, help="ignore words more than this share of photos have")
    parser.add_argument("--show", metavar="ID", action="append", default=[],
                        help="print this photo's k nearest, with cosine and whether alike")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "validation" / "embeddings.json",
                        help="embeddings per photo (default var/validation/embeddings.json)")
    args = parser.parse_args()
    manifest = photos()
    emb = embed_all(manifest, args.cache)
    n = len(manifest)
    alike, ignored = truth(manifest, args.generic)
    cos = emb @ emb.T
    np.fill_diagonal(cos, -np.inf)

    upper = np.triu_indices(n, 1)
    pair_cos, pair_alike = cos[upper], alike[upper]
    print(f"{n} photos, {len(pair_cos)} pairs, {int(pair_alike.sum())} alike "
          f"(base rate {pair_alike.mean():.0%})")
    print("ignored as generic (> {:.0%} of photos): {}".format(
        args.generic, ", ".join(f"{w} ({c})" for w, c in ignored) or "none"))
    print("cosine of all pairs: " + "  ".join(f"p{q} {np.percentile(pair_cos, q):.2f}" for q in (10, 50, 90, 99)))
    nobody = [p["id"] for p, row in zip(manifest, alike, strict=True) if not row.any()]
    print(f"photos alike to no other: {len(nobody)} ({', '.join(nobody)})")

    # a Similar list: the k nearest, best first (Catalog.similar), then the UI's cutoff
    order = np.argsort(-cos, axis=1, kind="stable")[:, :args.k]
    top_cos = np.take_along_axis(cos, order, axis=1)
    top_alike = np.take_along_axis(alike, order, axis=1)

    rows = []
    print(f"\n{'cutoff':>6} {'pairs':>6} {'alike':>6} {'precision':>9} | k={args.k}: {'with any':>8} "
          f"{'mean kept':>9} {'shown':>6} {'precision':>9}")
    for c in CUTOFFS:
        above = pair_cos >= c
        prec = pair_alike[above].mean() if above.any() else float("nan")
        kept = top_cos >= c
        shown_prec = top_alike[kept].mean() if kept.any() else float("nan")
        row = (float(c), int(above.sum()), int(pair_alike[above].sum()), prec,
               int(kept.any(axis=1).sum()), kept.sum(axis=1).mean(), int(kept.sum()), shown_prec)
        rows.append(row)
        print(f"{row[0]:6.2f} {row[1]:6d} {row[2]:6d} {_pct(row[3]):>9} |      {row[4]:>4}/{n:<3} "
              f"{row[5]:9.2f} {row[6]:6d} {_pct(row[7]):>9}")

    print()
    for name, col in (("pairs above the cutoff", 3), (f"a k={args.k} list", 7)):
        best = next((r for r in rows if r[col] >= args.goal), None)
        if best is None:
            print(f"no cutoff in {CUTOFFS[0]:.2f}..{CUTOFFS[-1]:.2f} reaches precision {args.goal:.0%} ({name})")
            continue
        print(f"lowest cutoff with precision >= {args.goal:.0%} ({name}): {best[0]:.2f}  -> pair precision "
              f"{best[3]:.0%} over {best[1]} pairs; k={args.k}: {best[4]}/{n} photos keep a neighbour, "
              f"{best[5]:.2f} kept per photo, list precision {best[7]:.0%} over {best[6]}")

    by_id = {p["id"]: i for i, p in enumerate(manifest)}
    for pid in args.show:
        i = by_id[pid]
        print(f"\n-- {pid}: {', '.join(manifest[i]['words'])}")
        for j, s, a in zip(order[i], top_cos[i], top_alike[i], strict=True):
            print(f"  {s:5.2f} {'alike' if a else '     '} {manifest[j]['id']:<28} {', '.join(manifest[j]['words'])}")


if __name__ == "__main__":
    main()
