"""The classifier's runtimes side by side (indexer.model.runtimes): model-only images/s at a batch,
and how far each strays from eager fp32 on real photos.

For every runtime available here (eager, channels_last, and compiled and int8 when `make
compiled` / `pixdex compile-model` has built their packages): images/s over --rounds timed
batches after a warm-up, in one run so the ratios compare; top-1 agreement with eager fp32 on the
validation photos (tests/bench/validation/README.md; int8 is calibrated on the test photos, none
of them in the validation set) and the largest difference of a concept's confidence; the time to
load the runtime (a cold start pays it). The GPU rows run when CUDA is there.

Beside them, the face detector (indexer.model.faces) at the same batch, on the same photos' 416 px
previews: as they come (many shapes, so few images share a pyramid) and brought to one 4:3 shape (a
camera's roll), and its cost per image over the fastest classifier runtime's (issue 14: below 1).

Run:  make bench   or   .venv/bin/python tests/bench/bench_runtimes.py --batch 16
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_labels import _file, photos

from indexer.images import decode
from indexer.model.faces import WORK_SIZE, FaceDetector
from indexer.model.labeller import EfficientNetLite0Labeller, predictions
from indexer.settings import ImageLimits, Settings


def validation_photos(size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every fetched validation photo as the pipeline feeds the models, from one decode each: the
    classifier's (N, S, S, 3) uint8 input, and the face detector's previews."""
    decoded = [decode(path.read_bytes(), ImageLimits(), size, WORK_SIZE)
               for path in filter(None, (_file(photo) for photo in photos()))]
    if not decoded:
        raise SystemExit("no validation photos: run .venv/bin/python scripts/fetch_validation.py")
    return np.stack([d.pixels for d in decoded]), [d.preview for d in decoded]


def labeller(runtime: str, device: str) -> tuple[EfficientNetLite0Labeller, float]:
    t = time.perf_counter()
    model = Settings().model_settings()  # PIXDEX_MODEL_COMPILED: where compiled packages are
    lab = EfficientNetLite0Labeller(model.model_copy(update={"device": device, "faces": False, "runtime": runtime}))
    lab.load()
    return lab, time.perf_counter() - t


def rate(lab: EfficientNetLite0Labeller, batch: np.ndarray, rounds: int) -> float:
    lab.probabilities(batch)  # warm-up: first-call allocations, oneDNN primitive caches
    t = time.perf_counter()
    for _ in range(rounds):
        lab.probabilities(batch)
    return rounds * len(batch) / (time.perf_counter() - t)


def agreement(lab: EfficientNetLite0Labeller, reference: tuple[np.ndarray, np.ndarray], pixels: np.ndarray,
              batch: int) -> tuple[float, float]:
    """(top-1 agreement with the reference, largest |concept confidence difference|) over `pixels`."""
    probs = np.concatenate([lab.probabilities(pixels[i:i + batch])[0] for i in range(0, len(pixels), batch)])
    ref_probs, ref_emb = reference
    top1 = float(np.mean(probs.argmax(1) == ref_probs.argmax(1)))
    mine = predictions(probs, ref_emb, lab.taxonomy, lab.settings.top_k, "x")
    theirs = predictions(ref_probs, ref_emb, lab.taxonomy, lab.settings.top_k, "x")
    worst = 0.0
    for a, b in zip(mine, theirs, strict=True):
        ca, cb = dict(a.concepts), dict(b.concepts)
        for name in ca.keys() | cb.keys():
            worst = max(worst, abs(ca.get(name, 0.0) - cb.get(name, 0.0)))
    return top1, worst


def face_rates(previews: list[np.ndarray], batch: int, rounds: int) -> tuple[float, float]:
    """The face detector's images/s at `batch` on `previews`: (as they are, brought to one 4:3 shape)."""
    from PIL import Image

    one_shape = [np.asarray(Image.fromarray(p).resize((WORK_SIZE, WORK_SIZE * 3 // 4), Image.Resampling.BILINEAR))
                 for p in previews]
    detector = FaceDetector(device="cpu")
    detector.load()
    out = []
    for images in (previews, one_shape):
        detector.detect(images[:batch])  # warm-up
        t = time.perf_counter()
        done = 0
        for _ in range(max(1, rounds // 4)):
            for i in range(0, len(images), batch):
                done += len(detector.detect(images[i:i + batch]))
        out.append(done / (time.perf_counter() - t))
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="images per batch on CPU (default 16)")
    parser.add_argument("--gpu-batch", type=int, default=256, help="images per batch on a GPU (default 256)")
    parser.add_argument("--rounds", type=int, default=8, help="timed batches per runtime (default 8)")
    args = parser.parse_args()

    pixels, previews = validation_photos(224)
    held_out = pixels
    print(f"{len(pixels)} validation photos; torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        size = args.batch if device == "cpu" else args.gpu_batch
        batch = np.resize(pixels, (size, *pixels.shape[1:]))
        eager, load_s = labeller("eager", device)
        reference = tuple(np.concatenate(part) for part in zip(
            *[eager.probabilities(held_out[i:i + 32]) for i in range(0, len(held_out), 32)], strict=True))
        candidates = [("eager", eager, load_s)]
        for runtime in ("channels_last", "compiled", "int8"):
            lab, load_s = labeller(runtime, device)
            if lab.runtime == runtime:
                candidates.append((runtime, lab, load_s))
            else:
                print(f"{device}: no {runtime} package here ({lab.runtime} instead): make compiled builds them")
        for name, lab, load_s in candidates:
            top1, worst = agreement(lab, reference, held_out, 32)
            rows.append((device, name, size, rate(lab, batch, args.rounds), top1, worst, load_s))
    base = {d: next(r[3] for r in rows if r[0] == d and r[1] == "eager") for d in devices}
    print(f"\n{'device':6} {'runtime':24} {'batch':>5} {'images/s':>9} {'x eager':>8} {'top-1 agree':>12} "
          f"{'max concept diff':>17} {'load s':>7}")
    for device, name, size, ips, top1, worst, load_s in rows:
        print(f"{device:6} {name:24} {size:5d} {ips:9.1f} {ips / base[device]:8.2f} {top1:12.1%} {worst:17.4f} "
              f"{load_s:7.2f}")
    print(f"(agreement with eager fp32 on {len(held_out)} validation photos)")
    mixed, one_shape = face_rates(previews, args.batch, args.rounds)
    fastest = max(r[3] for r in rows if r[0] == "cpu")
    print(f"\nface detector, cpu, batch {args.batch}: {mixed:.1f} images/s on the previews as they are, "
          f"{one_shape:.1f} at one 4:3 shape")
    print(f"face detector cost per image / fastest classifier runtime's ({fastest:.1f} images/s): "
          f"{fastest / mixed:.2f} as they are, {fastest / one_shape:.2f} at one shape   (goal: < 1)")


if __name__ == "__main__":
    main()
