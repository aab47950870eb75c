"""The catalogue record (ARCHITECTURE.md "The record"): one per object key."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np


class Status(StrEnum):
    LABELED = "LABELED"
    NOT_CLASSIFIED = "NOT_CLASSIFIED"
    FAILED = "FAILED"


class Source(StrEnum):
    """Where a label came from."""

    MODEL = "model"  # the classifier (a class, or a concept summed over classes)
    FACES = "faces"  # the face detector (person, people, face, portrait, group)
    PROPERTY = "property"  # read off the pixels and size (black and white, colours, orientation)
    HUMAN = "human"  # a review: outranks the others and survives relabelling


@dataclass(frozen=True)
class Label:
    name: str
    confidence: float
    source: Source = Source.MODEL
    parents: tuple[str, ...] = ()


def record_id(uri: str) -> str:
    """Stable id: the first 16 bytes of SHA-256 of the canonical URI, hex."""
    return hashlib.sha256(uri.encode()).hexdigest()[:32]


SEQUENCER_WIDTH = 64


def normalise_sequencer(raw: str | None) -> str | None:
    """An S3 event `sequencer` in a form whose text order is event order.

    AWS: "compare the strings after right-padding the shorter one with zeros". Upper-case hex,
    right-padded to a fixed width, so catalogues compare sequencers as plain strings.
    """
    if not raw:
        return None
    text = raw.strip().upper()
    if len(text) > SEQUENCER_WIDTH or any(c not in "0123456789ABCDEF" for c in text):
        raise ValueError(f"sequencer {raw!r} is not a hex string of at most {SEQUENCER_WIDTH} digits")
    return text.ljust(SEQUENCER_WIDTH, "0")


def embedding_model(model_id: str | None) -> str | None:
    """The part of a model_id that made the embedding (the classifier's weights): records whose
    rule files or face detector differ still compare as images (`+vocabulary@...+mtcnn@...`)."""
    return model_id.split("+", 1)[0] if model_id else model_id


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Record:
    uri: str
    status: Status
    id: str = ""
    bucket: str | None = None
    key: str | None = None
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    content_type: str | None = None
    last_modified: datetime | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    error: str | None = None
    labels: list[Label] = field(default_factory=list)
    embedding: np.ndarray | None = None
    # the face detector's faces: (x1, y1, x2, y2, score), the box in fractions of width and height
    faces: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    model_id: str | None = None
    sequencer: str | None = None  # normalised (normalise_sequencer): text order is event order
    indexed_at: datetime = field(default_factory=utcnow)
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    # what the photo says of itself (indexer.exif): empty where it says nothing usable
    taken_at: datetime | None = None  # UTC
    camera: str | None = None
    lens: str | None = None
    focal_length: float | None = None  # mm
    exposure_time: float | None = None  # s
    f_number: float | None = None
    iso: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None  # m
    content_hash: str | None = None  # sha256 of the object's bytes, hex: exact copies share it

    def __post_init__(self) -> None:
        if not self.id:
            self.id = record_id(self.uri)

    @property
    def label_names(self) -> list[str]:
        """Every label name, parents included, each once, in label order."""
        names: dict[str, None] = {}
        for label in self.labels:
            names[label.name] = None
            names.update(dict.fromkeys(label.parents))
        return list(names)

    @property
    def top_label(self) -> Label | None:
        """The most confident label of what the image shows (a property, exact, says nothing of that)."""
        return max((lb for lb in self.labels if lb.source != Source.PROPERTY), key=lambda label: label.confidence,
                   default=None)

    def best_labels(self, n: int = 3, focus: tuple[str, ...] = ()) -> list[Label]:
        """For display: labels named in `focus` first, then the most specific (classes, which are
        no other label's parent; the classifier's before the face detector's) by confidence, then
        parent concepts, then properties."""
        wanted = {f.casefold() for f in focus}
        parents = {p.casefold() for lb in self.labels for p in lb.parents}
        ranked = sorted(self.labels, key=lambda lb: (lb.name.casefold() not in wanted, lb.source == Source.PROPERTY,
                                                      lb.name.casefold() in parents, lb.source == Source.FACES,
                                                      -lb.confidence))
        return ranked[:n]

    def label_summary(self, n: int = 3, focus: tuple[str, ...] = (), sep: str = ", ") -> str:
        """`cat 92%, Egyptian cat 39%, ...`, or why the image failed."""
        if self.status == Status.FAILED:
            return f"FAILED: {self.error}"
        return sep.join(f"{lb.name} {lb.confidence:.0%}" for lb in self.best_labels(n, focus))

    def confidence(self, name: str) -> float | None:
        name = name.casefold()
        return max((lb.confidence for lb in self.labels if lb.name.casefold() == name), default=None)

    def to_json(self, with_embedding: bool = False) -> dict[str, Any]:
        """The record as plain JSON types, with the fields named in ARCHITECTURE.md."""
        out = asdict(self)
        out["labels"] = [
            {"name": lb.name, "confidence": round(lb.confidence, 6), "source": str(lb.source),
             "parents": list(lb.parents)}
            for lb in self.labels
        ]
        out["label_names"] = self.label_names
        out["faces"] = [{"box": [round(v, 4) for v in f[:4]], "score": round(f[4], 4)} for f in self.faces]
        out["face_count"] = len(self.faces)
        out["status"] = str(self.status)
        for key in ("last_modified", "indexed_at", "reviewed_at", "taken_at"):
            out[key] = out[key].isoformat() if out[key] else None
        out["embedding"] = self.embedding.round(6).tolist() if with_embedding and self.embedding is not None else None
        if not with_embedding:
            del out["embedding"]
        return out
