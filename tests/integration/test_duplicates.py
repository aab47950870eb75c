"""indexer.catalog.duplicates on a SQLite catalogue of records built here (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.catalog import open_catalog
from indexer.catalog.duplicates import find
from indexer.record import Label, Record, Status


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """2,100 noisy copies of one vector (cosine 0.998 between two): more linked pairs (2.2 million)
    than the 2,000,000 that used to stop the command."""
    rng = np.random.default_rng(7)
    base = rng.standard_normal(64)
    vectors = base + 0.005 * rng.standard_normal((2100, 64))
    path = tmp_path_factory.mktemp("frames") / "frames.db"
    with open_catalog(f"sqlite:///{path}") as cat:
        cat.upsert_many([Record(f"file:///burst/{i}.jpg", Status.LABELED, model_id="m@1", labels=[Label("x", 0.5)],
                                embedding=v / np.linalg.norm(v), content_hash=f"{i:064x}")
                         for i, v in enumerate(vectors)])
    return f"sqlite:///{path}"


@pytest.mark.parametrize("threshold", [0.9, 0.99])
def test_thousands_of_near_identical_copies_are_one_group(frames, threshold):
    with open_catalog(frames) as cat:
        found = find(cat, threshold=threshold)
    assert found.exact == [] and found.compared == 2100
    [group] = found.near
    assert len(group.ids) == 2100 and group.similarity[0] == 1.0 and group.lowest >= 0.99
