"""Records as rows of `images` (schema.COLUMNS) and back: the record's fields as catalog/fields.py
stores them, its labels as JSON `[[name, confidence, source, [parents]], ...]`, its embedding as
float16 bytes, its faces as JSON `[[x1, y1, x2, y2, score], ...]`."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from indexer.catalog.fields import decode, encode
from indexer.catalog.sqlite.schema import COLUMNS
from indexer.record import Label, Record, Source


def row_of(r: Record, sequencer: str | None) -> tuple[Any, ...]:
    """The `images` row of `r`, in COLUMNS order, with `sequencer` (the record's, or the one
    already applied) in place of the record's."""
    labels = json.dumps([[lb.name, lb.confidence, str(lb.source), list(lb.parents)] for lb in r.labels])
    emb = None if r.embedding is None else np.asarray(r.embedding, dtype=np.float16).tobytes()
    top = r.top_label.confidence if r.top_label else -1.0
    faces = json.dumps([list(f) for f in r.faces])
    row = {**encode(r), "sequencer": sequencer, "top_confidence": top, "labels": labels, "embedding": emb,
           "faces": faces}
    return tuple(row[c] for c in COLUMNS)


def record_of(row: dict[str, Any]) -> Record:
    """The record of an `images` row (a column -> value dict; without `embedding`: none)."""
    labels = [Label(n, c, Source(s), tuple(p)) for n, c, s, p in json.loads(row["labels"])]
    emb = row.get("embedding")
    faces = [tuple(f) for f in json.loads(row.get("faces") or "[]")]
    return Record(**decode(row), labels=labels, faces=faces,
                  embedding=None if emb is None else np.frombuffer(emb, dtype=np.float16).astype(np.float32))
