"""Several writer processes on one catalogue, as several indexers or Lambda copies are: shuffled,
duplicated create and delete events for the same keys, each with its sequencer, on SQLite (one
transaction per write) and on the OpenSearch API (osmem-server; conditional writes by version).
Every key ends as its highest sequencer says, and a review made meanwhile is kept, replaced whole
by a newer write, or refused: never silently lost, never half-applied."""

from __future__ import annotations

import contextlib
import multiprocessing
import random
from dataclasses import replace

import pytest

from indexer.catalog import CatalogError, open_catalog
from indexer.errors import CatalogUnavailable
from indexer.record import Label, Record, Status, normalise_sequencer

KEYS = [f"s3://bucket/photo-{i}.jpg" for i in range(4)]
EVENTS_PER_KEY = 40
WRITERS = 6


def events(seed: int) -> list[tuple[str, str, int]]:
    """(key, created | removed, sequencer) for every key, each event twice, in a shuffled order."""
    rng = random.Random(seed)
    out = [(key, rng.choice(["created", "removed"]), rng.randrange(1, 10**9)) for key in KEYS
           for _ in range(EVENTS_PER_KEY)]
    out += out
    rng.shuffle(out)
    return out


def seq(n: int) -> str:
    return normalise_sequencer(f"{n:016X}")


def relabeller(url: str, rounds: int) -> None:
    """A relabel of what is stored (a new model): the same bytes, new model labels, written only if
    no event changed the key since the record was read (`expected`: its sequencer; the backfill
    reads the bytes from the store after its check, so it expects what the check saw)."""
    with open_catalog(url) as cat:
        for _ in range(rounds):
            record = cat.get(KEYS[0])  # what it relabels: the stored record, no newer than its own sequencer
            if record is None:
                continue
            rid, seen = record.id, record.sequencer
            with contextlib.suppress(CatalogUnavailable):  # contended 8 rounds: transient, a real caller retries
                cat.upsert_many([replace(record, labels=[Label("dog", 0.7)], reviewed_at=None, reviewed_by=None,
                                         sequencer=None)], expected={rid: seen})  # a relabel: no event


def writer(url: str, batch: list[tuple[str, str, int]]) -> None:
    with open_catalog(url) as cat:
        for key, change, n in batch:
            if change == "created":
                cat.upsert_many([Record(uri=key, status=Status.LABELED, etag=str(n), sequencer=seq(n),
                                        labels=[Label("cat", 0.9)])])
            else:
                cat.delete([Record(uri=key, status=Status.LABELED).id], sequencer=seq(n))


@pytest.fixture(params=["sqlite", "opensearch"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    return request.getfixturevalue("osmem_clone").url


def test_every_key_ends_as_its_highest_sequencer_says(url):
    with open_catalog(url):
        pass  # the tables or indices, before the writers race to make them
    all_events = events(7)
    parts = [all_events[i::WRITERS] for i in range(WRITERS)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=writer, args=(url, part)) for part in parts]
    procs.append(ctx.Process(target=relabeller, args=(url, 60)))
    for p in procs:
        p.start()
    reviews = []  # the etag of the version each review was applied to
    with open_catalog(url) as cat:  # a person reviews one image, again and again, while the writers run
        while any(p.is_alive() for p in procs) and len(reviews) < 30:
            record = cat.get(KEYS[0])
            if record is None:
                continue
            with contextlib.suppress(CatalogError):  # refused (deleted meanwhile, or contended): said, not lost
                reviews.append(cat.review(record.id, [Label("tabby cat", 1.0)], "ana").etag)
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    assert reviews, "no review landed while the writers ran"
    with open_catalog(url) as cat:
        for key in KEYS:
            last = max((e for e in all_events if e[0] == key), key=lambda e: e[2])
            got = cat.get(key)
            if last[1] == "removed":
                assert got is None, key
            else:
                assert got is not None and got.sequencer == seq(last[2]) and got.etag == str(last[2]), key
                reviewed = got.reviewed_at is not None
                assert reviewed == ({lb.name for lb in got.labels} == {"tabby cat"}), key  # whole, or not at all
                # a relabel of the same bytes keeps a review: it never ends with the model's "dog" over it
                if key == KEYS[0] and got.etag == reviews[-1]:
                    assert reviewed, "the last review was of this very version, and it is gone"


def test_a_stale_review_does_not_undo_a_newer_write(url):
    with open_catalog(url) as cat:
        original = Record(uri=KEYS[0], status=Status.LABELED, etag="1", sequencer=seq(1), labels=[Label("dog", 0.8)])
        cat.upsert_many([original])
        cat.upsert_many([replace(original, etag="2", sequencer=seq(2), labels=[Label("cat", 0.9)])])
        reviewed = cat.review(original.id, [Label("tabby cat", 1.0)], "ana")
        assert reviewed.etag == "2" and cat.get(original.id).sequencer == seq(2)  # read in the same transaction
