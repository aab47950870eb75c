#!/usr/bin/env python3
"""Train the scene heads (indexer/data/scene_heads.json, read by indexer/model/scenes.py).

Per word (tree, grass, cloud, night, indoor, lake, valley...), a logistic regression over the default
classifier's L2-normalised embedding, fitted on the labelled training photos
(tests/bench/training/photos.json: real photos that Debian and PyPI packages ship, none of them
in the validation set). Each photo also counts mirrored. Per word:

  1. the L2 penalty is chosen by 5-fold cross-validation (photos and their mirrors in one fold),
     by the out-of-fold log loss;
  2. the threshold is the lowest at which the out-of-fold predictions above it are right at least
     --precision of the time (default 0.90, above the 85% the product promises, since the
     validation and real photos are not these); a word that reaches it nowhere gets no head;
  3. the head is refitted on every photo;
  4. the heads are checked on --holdout (tests/bench/training/holdout.json: photos judged alike,
     from other packages, never trained on): per head, what it returns there and how much is right.

    .venv/bin/python scripts/train_scenes.py            # fetch the photos if needed, train, write
    .venv/bin/python scripts/train_scenes.py --dry-run  # print the table, write nothing

Then `.venv/bin/python tests/bench/bench_labels.py` measures the heads on the validation photos.
Deterministic: the same photos, weights and torch give the same file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.images import decode  # noqa: E402
from indexer.model.labeller import make_labeller  # noqa: E402
from indexer.model.scenes import SCENES_FILE, SceneHeads, logistic  # noqa: E402
from indexer.model.vocabulary import imagenet  # noqa: E402
from indexer.settings import ImageLimits, ModelSettings  # noqa: E402

MANIFEST = ROOT / "tests" / "bench" / "training" / "photos.json"
HOLDOUT = ROOT / "tests" / "bench" / "training" / "holdout.json"  # judged alike, never trained on
DEST = ROOT / "var" / "training"
OUT = ROOT / "indexer" / "data" / SCENES_FILE
WORDS = ["sky", "cloud", "sunset", "night", "snow", "water", "sea", "beach", "lake", "mountain", "landscape", "nature",
         "forest", "tree", "grass", "field", "flower", "street", "city", "building", "indoor", "coast", "cliff",
         "valley"]
PENALTIES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
FOLDS = 5
SCALE = 10.0  # the embedding is unit-length: logits are fitted as SCALE * (w . x), which LBFGS handles better
MIN_RETURNED = 3  # a threshold must return at least this many training photos


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def photo_files(manifest: Path, dest: Path) -> list[tuple[dict, Path]]:
    photos = json.loads(manifest.read_text())
    missing = [p for p in photos if not sorted((dest / "photos").glob(f"{p['id']}.*"))]
    if missing:
        print(f"fetching {len(missing)} training photos (scripts/fetch_validation.py)", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_validation.py"), "--manifest", str(manifest),
                        "--dest", str(dest)], check=True)
    return [(p, sorted((dest / "photos").glob(f"{p['id']}.*"))[0]) for p in photos]


def embeddings(photos: list[tuple[dict, Path]], cache: Path) -> tuple[np.ndarray, str]:
    """(N, 2, D): each photo's embedding as pixdex index computes it (eager fp32), and mirrored."""
    labeller = make_labeller(ModelSettings(device="cpu", runtime="eager", faces=False))
    labeller.load()
    model = f"{labeller.name}@{labeller.weights_hash}"
    stored = dict(np.load(cache)) if cache.is_file() else {}
    key = np.array(model)
    if stored.get("model") != key:
        stored = {"model": key}
    out, fresh, started = [], 0, time.perf_counter()
    for photo, path in photos:
        name = f"p{photo['sha256']}"
        if name not in stored:
            d = decode(path.read_bytes(), ImageLimits(), labeller.input_size, 0)
            both = np.stack([d.pixels, d.pixels[:, ::-1]])
            stored[name] = labeller.probabilities(both)[1]
            fresh += 1
        out.append(stored[name])
    if fresh:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **stored)
    print(f"{len(out)} photos embedded ({fresh} now, {time.perf_counter() - started:.1f}s)", file=sys.stderr)
    return np.stack(out).astype(np.float32), model


def fit(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression (LBFGS): returns (weights over x, bias)."""
    import torch

    tx, ty = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(SCALE * (tx @ w) + b, ty) + penalty * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return (SCALE * w).detach().numpy(), float(b.detach())


def folds_of(y: np.ndarray) -> np.ndarray:
    """Stratified folds: positives and negatives each dealt round-robin in a fixed order."""
    fold = np.empty(len(y), dtype=int)
    for value in (0, 1):
        where = np.flatnonzero(y == value)
        fold[where] = np.arange(len(where)) % FOLDS
    return fold


def out_of_fold(x: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
    """Each photo's probability from a head fitted without it (nor its mirror)."""
    fold, out = folds_of(y), np.zeros(len(y))
    for k in range(FOLDS):
        train, test = fold != k, fold == k
        w, b = fit(x[train].reshape(-1, x.shape[-1]), np.repeat(y[train], 2), penalty)
        out[test] = logistic(x[test, 0] @ w + b)  # judged on the photos as they are
    return out


def threshold_for(scores: np.ndarray, y: np.ndarray, goal: float) -> tuple[float, float, float] | None:
    """The lowest threshold whose returned photos are right at least `goal` of the time:
    (threshold, recall, precision) there, or None."""
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(y[order])
    returned = np.arange(1, len(y) + 1)
    ok = np.flatnonzero((hits / returned >= goal) & (returned >= MIN_RETURNED))
    if not len(ok):
        return None
    k = ok.max()
    return float(scores[order[k]]), float(hits[k] / y.sum()), float(hits[k] / returned[k])


def check(heads: SceneHeads, holdout: Path, dest: Path) -> None:
    """The heads just fitted, on photos judged by the same rules that no head was trained on (other
    packages' photos, mostly scenery): per head, at its trained threshold (pixdex stores at the
    vocabulary's stricter cut), what it returns and how much of that is right."""
    photos = photo_files(holdout, dest)
    probs = heads.probabilities(embeddings(photos, dest / "embeddings.npz")[0][:, 0])
    returned = right = 0
    print(f"\n{'head':<10} {'photos':>6} {'returned':>8} {'right':>6}   (held out: {len(photos)} photos of "
          f"{shown(holdout.resolve())}, at the trained thresholds)")
    for k, word in enumerate(heads.names):
        relevant = np.array([word in p["words"] for p, _ in photos])
        found = probs[:, k] >= heads.thresholds[k]
        returned, right = returned + int(found.sum()), right + int((found & relevant).sum())
        print(f"{word:<10} {int(relevant.sum()):>6} {int(found.sum()):>8} {int((found & relevant).sum()):>6}")
    print(f"{'all heads':<10} {'':>6} {returned:>8} {right:>6}   precision {right / max(returned, 1):.0%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="labelled photos (default: %(default)s)")
    parser.add_argument("--dest", type=Path, default=DEST, help="where the photos are fetched (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="the heads file written (default: %(default)s)")
    parser.add_argument("--precision", type=float, default=0.90, help="out-of-fold precision each threshold reaches")
    parser.add_argument("--holdout", type=Path, default=HOLDOUT,
                        help="labelled photos never trained on, to check the heads on (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the tables, write nothing")
    args = parser.parse_args()

    photos = photo_files(args.manifest, args.dest)
    x, model = embeddings(photos, args.dest / "embeddings.npz")
    words = imagenet()
    heads, rows = {}, []
    for word in WORDS:
        if words.resolve(word) != word:
            raise SystemExit(f"{word!r} is no label of the vocabulary (it resolves to {words.resolve(word)!r})")
        y = np.array([word in p["words"] for p, _ in photos], dtype=np.float64)
        if y.sum() < MIN_RETURNED:
            rows.append(f"{word:<10} {int(y.sum()):>5}   too few photos")
            continue
        losses = {}
        for penalty in PENALTIES:
            s = np.clip(out_of_fold(x, y, penalty), 1e-6, 1 - 1e-6)
            losses[penalty] = (-np.mean(y * np.log(s) + (1 - y) * np.log(1 - s)), s)
        penalty = min(losses, key=lambda p: losses[p][0])
        scores = losses[penalty][1]
        auc = float((scores[y > 0][:, None] > scores[y == 0][None, :]).mean())
        chosen = threshold_for(scores, y, args.precision)
        if chosen is None:
            rows.append(f"{word:<10} {int(y.sum()):>5} {auc:5.2f} {penalty:8.0e}   no threshold reaches "
                        f"{args.precision:.0%}: no head")
            continue
        threshold, recall, precision = chosen
        w, b = fit(x.reshape(-1, x.shape[-1]), np.repeat(y, 2), penalty)
        heads[word] = {"threshold": round(threshold, 4), "bias": round(b, 6),
                       "positives": int(y.sum()), "penalty": penalty,
                       "out_of_fold": {"auc": round(auc, 3), "recall": round(recall, 3),
                                       "precision": round(precision, 3)},
                       "weights": [float(f"{v:.5g}") for v in w]}
        rows.append(f"{word:<10} {int(y.sum()):>5} {auc:5.2f} {penalty:8.0e} {threshold:9.3f} {recall:7.0%} "
                    f"{precision:9.0%}")
    print(f"{'word':<10} {'photos':>5} {'auc':>5} {'penalty':>8} {'threshold':>9} {'recall':>7} {'precision':>9}"
          f"   (out of fold, {len(photos)} training photos)")
    print("\n".join(rows))
    data = {"embedding": model, "dim": int(x.shape[-1]),
            "trained": {"photos": len(photos), "manifest": shown(args.manifest.resolve()),
                        "precision_goal": args.precision, "folds": FOLDS, "script": "scripts/train_scenes.py"},
            "heads": heads}
    if args.holdout and args.holdout.is_file():
        check(SceneHeads.from_json(json.dumps(data).encode()), args.holdout, args.dest)
    if args.dry_run:
        return 0
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {shown(args.out.resolve())}: {len(heads)} heads ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
