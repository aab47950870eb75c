"""How each field of the record is indexed: one decision per `Record` field, for both backends.

The SQLite `images` columns and rows and the OpenSearch mapping and documents derive from FIELDS,
so a new Record field is one edit in indexer/record.py plus its line here
(tests/unit/test_catalog_fields.py fails while a field has no decision). FIELDS is in the order of
the `images` columns, which existing catalogue files have: add new fields at its end.

A field in FIELDS is stored as a value of its own, encoded as its type says: a datetime as
`utc_iso` text (fixed width, so text order is time order), an enum as its text, str and int as
they are. The OWN fields are encoded by each backend its own way, beside the values it derives
from the record (SQLite: labels as JSON, the embedding as float16; OpenSearch: nested label docs
and a knn_vector).
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from types import NoneType, UnionType
from typing import Any

from indexer.catalog.base import utc_iso
from indexer.record import Record

KEYWORD = {"type": "keyword"}  # exact values: filters, terms aggregations, sorts
LONG = {"type": "long"}
INTEGER = {"type": "integer"}
DATE = {"type": "date"}
DOUBLE = {"type": "double"}
TEXT = {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}}  # words, and `.raw` to count by


@dataclass(frozen=True)
class Field:
    """One Record field stored as a value of its own: its `images` column and its mapping property."""

    name: str
    sqlite: str  # the column's type and constraints
    opensearch: dict[str, Any]


FIELDS: tuple[Field, ...] = (
    Field("id", "TEXT PRIMARY KEY", KEYWORD),
    Field("uri", "TEXT NOT NULL UNIQUE", KEYWORD),
    Field("bucket", "TEXT", KEYWORD),
    Field("key", "TEXT", KEYWORD),
    Field("version_id", "TEXT", KEYWORD),
    Field("etag", "TEXT", KEYWORD),
    Field("size", "INTEGER", LONG),
    Field("content_type", "TEXT", KEYWORD),
    Field("last_modified", "TEXT", DATE),
    Field("width", "INTEGER", INTEGER),
    Field("height", "INTEGER", INTEGER),
    Field("format", "TEXT", KEYWORD),
    Field("status", "TEXT NOT NULL", KEYWORD),
    Field("error", "TEXT", TEXT),
    Field("model_id", "TEXT", KEYWORD),
    Field("sequencer", "TEXT", KEYWORD),
    Field("indexed_at", "TEXT NOT NULL", DATE),
    Field("reviewed_at", "TEXT", DATE),
    Field("reviewed_by", "TEXT", KEYWORD),
    Field("taken_at", "TEXT", DATE),
    Field("camera", "TEXT COLLATE NOCASE", {"type": "keyword", "fields": {"lc": {"type": "keyword",
                                                                            "normalizer": "lowercase"}}}),
    Field("lens", "TEXT", KEYWORD),
    Field("focal_length", "REAL", DOUBLE),
    Field("exposure_time", "REAL", DOUBLE),
    Field("f_number", "REAL", DOUBLE),
    Field("iso", "INTEGER", INTEGER),
    Field("latitude", "REAL", DOUBLE),
    Field("longitude", "REAL", DOUBLE),
    Field("altitude", "REAL", DOUBLE),
    Field("content_hash", "TEXT", KEYWORD),  # exact copies (indexer.catalog.duplicates); indexed in SQLite
)
OWN = ("labels", "embedding", "faces")  # encoded by each backend itself (see the module docstring)


def opensearch_properties() -> dict[str, dict[str, Any]]:
    """The mapping properties of FIELDS (copies: a caller may change them)."""
    return {f.name: copy.deepcopy(f.opensearch) for f in FIELDS}


def undecided() -> list[str]:
    """Record fields with no decision here (neither in FIELDS nor OWN); should be none."""
    decided = {f.name for f in FIELDS} | set(OWN)
    return [f.name for f in dataclasses.fields(Record) if f.name not in decided]


# -- values <-> stored values ------------------------------------------------------------------

Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]  # (encode, decode); both map None to None


def _same(value: Any) -> Any:
    return value


def _date(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _codec(name: str, hint: Any) -> Codec:
    """How a field of type `hint` is stored, from its type (Optional or not)."""
    kinds = [t for t in typing.get_args(hint) if t is not NoneType] if isinstance(hint, UnionType) else [hint]
    kind = kinds[0] if len(kinds) == 1 else None
    if kind is datetime:
        return utc_iso, _date
    if isinstance(kind, type) and issubclass(kind, Enum):
        return (lambda v: None if v is None else str(v)), (lambda v: None if v is None else kind(v))
    if kind in (str, int, float):
        return _same, _same
    raise TypeError(f"Record.{name}: no stored form for {hint}; make it an OWN field (indexer/catalog/fields.py)")


_HINTS = typing.get_type_hints(Record)
_CODECS: tuple[tuple[str, Callable[[Any], Any], Callable[[Any], Any]], ...] = tuple(
    (f.name, *_codec(f.name, _HINTS[f.name])) for f in FIELDS)


def encode(record: Record) -> dict[str, Any]:
    """The FIELDS of `record` as both backends store them, in FIELDS order."""
    return {name: enc(getattr(record, name)) for name, enc, _ in _CODECS}


def decode(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Record keyword arguments for FIELDS from what `encode` stored (an absent value is None)."""
    return {name: dec(stored.get(name)) for name, _, dec in _CODECS}
