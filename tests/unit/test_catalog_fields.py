"""indexer.catalog.fields: every Record field has an index decision, and both backends store all of them."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import numpy as np
import pytest

from indexer.catalog import fields
from indexer.catalog.opensearch import _doc, _record, index_body
from indexer.catalog.sqlite.rows import record_of, row_of
from indexer.catalog.sqlite.schema import COLUMNS
from indexer.record import Label, Record, Source, Status

AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
FULL = Record(  # every field set, none to its default (checked below)
    "s3://bucket/cats/a.jpg", Status.LABELED, bucket="bucket", key="cats/a.jpg", version_id="v1", etag="e1",
    size=1234, content_type="image/jpeg", last_modified=AT, width=640, height=480, format="JPEG", error="partly",
    labels=[Label("tabby", 0.75, Source.HUMAN, ("cat", "animal")), Label("dog", 0.25)],
    embedding=np.array([0.5, -0.25, 1.0, 0.0], dtype=np.float32),  # exact in float16
    model_id="model-1", sequencer="0A" * 32, indexed_at=AT, reviewed_at=AT, reviewed_by="someone",
    faces=[(0.25, 0.125, 0.5, 0.375, 0.96875)], taken_at=AT, camera="Canon EOS 80D", lens="EF50mm",
    focal_length=50.0, exposure_time=0.004, f_number=2.8, iso=400, latitude=48.8581833, longitude=2.2944444,
    altitude=35.5, content_hash="ab" * 32,
)


def test_every_record_field_has_one_index_decision_for_both_backends():
    assert fields.undecided() == []
    decided = [f.name for f in fields.FIELDS] + list(fields.OWN)
    assert sorted(decided) == sorted(f.name for f in dataclasses.fields(Record))  # each once, none stale
    mapping = index_body(8)["mappings"]["properties"]
    assert all(name in COLUMNS and name in mapping for name in decided)


def equal(name: str, x: object, y: object) -> bool:
    return bool(np.array_equal(x, y)) if name == "embedding" else x == y


def test_the_sample_sets_every_field():
    default = Record("file:///other.jpg", Status.FAILED)
    assert [f.name for f in dataclasses.fields(Record)
            if equal(f.name, getattr(FULL, f.name), getattr(default, f.name))] == []


def assert_same(a: Record, b: Record) -> None:
    for f in dataclasses.fields(Record):
        assert equal(f.name, getattr(a, f.name), getattr(b, f.name)), f.name


@pytest.mark.parametrize("backend", ["sqlite", "opensearch"])
def test_a_record_round_trips_with_every_field(backend):
    if backend == "sqlite":
        back = record_of(dict(zip(COLUMNS, row_of(FULL, FULL.sequencer), strict=True)))
    else:
        back = _record(json.loads(json.dumps(_doc(FULL, FULL.sequencer))))
    assert_same(back, FULL)
