"""Scene words read off the image embedding (source `model`): what ImageNet's classes cannot say
(tree, grass, cloud, sunset, night, indoor, building...) and scenes they say only through a few
classes (lake: a lakeshore; mountain: an alp or a volcano).

Per word, a logistic-regression head over the classifier's L2-normalised embedding, trained by
`scripts/train_scenes.py` on real photos that Debian and PyPI packages ship
(`tests/bench/training`), never on the validation photos. Each head carries the threshold at
which its out-of-fold precision on that training set reaches the script's goal; a word is stored
at or above it, with the head's probability as its confidence. The file names the weights it was
trained on: a head only means something on that model's embedding.

No torch: a (words x 1280) matrix product per batch, in numpy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

import numpy as np

from indexer.errors import ModelError

SCENES_FILE = "scene_heads.json"


def logistic(logits: np.ndarray) -> np.ndarray:
    """A head's probability from its logit (clipped: exp overflows past about 88)."""
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))


@dataclass(frozen=True, eq=False)
class SceneHeads:
    names: tuple[str, ...]
    weights: np.ndarray  # (K, D) float32, over the L2-normalised embedding
    bias: np.ndarray  # (K,)
    thresholds: np.ndarray  # (K,) a word is stored at or above its threshold
    embedding: str  # the model and weights the heads read ("efficientnet-lite0@<weights hash>")
    digest: str  # of the file, for model_id

    @classmethod
    def from_json(cls, raw: bytes, source: str = SCENES_FILE) -> SceneHeads:
        """The heads of a file written by scripts/train_scenes.py; ModelError says what is wrong."""
        try:
            data = json.loads(raw)
            heads = data["heads"]
            names = tuple(heads)
            weights = np.asarray([heads[n]["weights"] for n in names], dtype=np.float32)
            bias = np.asarray([heads[n]["bias"] for n in names], dtype=np.float32)
            thresholds = np.asarray([heads[n]["threshold"] for n in names], dtype=np.float32)
            embedding = str(data["embedding"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{source}: not a scene heads file ({type(exc).__name__}: {exc})") from exc
        if names and (weights.ndim != 2 or weights.shape[1] != int(data.get("dim", -1))):
            raise ModelError(f"{source}: every head needs {data.get('dim')} weights, found shape {weights.shape}")
        finite = np.isfinite(weights).all() and np.isfinite(bias).all()
        if not finite or not ((thresholds > 0) & (thresholds < 1)).all():
            raise ModelError(f"{source}: weights must be finite and thresholds between 0 and 1")
        return cls(names, weights, bias, thresholds, embedding, hashlib.sha256(raw).hexdigest()[:12])

    def chosen(self, words: list[str], stricter: float, thresholds: dict[str, float] | None = None) -> SceneHeads:
        """Only the heads of `words`, each threshold moved `stricter` of the way to 1, or set outright
        by `thresholds` (vocabulary.toml [scenes]: which words the heads may store, and how sure they
        must be, chosen on the validation set)."""
        thresholds = thresholds or {}
        missing = sorted(set(words) - set(self.names))
        if missing:
            raise ModelError(f"{SCENES_FILE}: no heads for {', '.join(missing)} (vocabulary.toml [scenes] words)")
        if not 0 <= stricter < 1:
            raise ModelError(f"vocabulary.toml: [scenes] stricter must be in [0, 1), not {stricter}")
        unused = sorted(set(thresholds) - set(words))
        if unused:
            raise ModelError(f"vocabulary.toml: [scenes] thresholds for words not in [scenes] words: "
                             f"{', '.join(unused)}")
        bad = sorted(f"{w} = {t}" for w, t in thresholds.items() if not 0 < t < 1)
        if bad:
            raise ModelError(f"vocabulary.toml: [scenes] thresholds must be between 0 and 1: {', '.join(bad)}")
        keep = [self.names.index(w) for w in words]
        moved = self.thresholds[keep] + stricter * (1 - self.thresholds[keep])
        cuts = np.asarray([thresholds.get(w, t) for w, t in zip(words, moved, strict=True)], dtype=np.float32)
        return replace(self, names=tuple(words), weights=self.weights[keep], bias=self.bias[keep], thresholds=cuts)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, D) L2-normalised embeddings -> (N, K) each word's probability."""
        return logistic(embeddings.astype(np.float32, copy=False) @ self.weights.T + self.bias)

    def passing(self, embedding: np.ndarray) -> dict[str, float]:
        """The words one picture's embedding reaches, with their probabilities."""
        if embedding.shape != (self.weights.shape[1],):
            return {}  # another model's embedding (or none): the heads cannot read it
        probs = self.probabilities(embedding[None])[0]
        return {n: float(p) for n, p, t in zip(self.names, probs, self.thresholds, strict=True) if p >= t}
