"""Several writer processes on one SQLite catalogue, as several indexers or Lambda copies are:
shuffled, duplicated create and delete events for the same keys, each with its sequencer. Every
key ends as its highest sequencer says, and a review made meanwhile is kept or replaced whole,
never half-applied. (The OpenSearch backend's conditional writes are still to come: issue 16.)"""

from __future__ import annotations

import multiprocessing
import random
from dataclasses import replace

from indexer.catalog import open_catalog
from indexer.record import Label, Record, Status, normalise_sequencer

KEYS = [f"s3://bucket/photo-{i}.jpg" for i in range(12)]
EVENTS_PER_KEY = 10
WRITERS = 4


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


def writer(url: str, batch: list[tuple[str, str, int]]) -> None:
    with open_catalog(url) as cat:
        for key, change, n in batch:
            if change == "created":
                cat.upsert_many([Record(uri=key, status=Status.LABELED, etag=str(n), sequencer=seq(n),
                                        labels=[Label("cat", 0.9)])])
            else:
                cat.delete([Record(uri=key, status=Status.LABELED).id], sequencer=seq(n))


def test_every_key_ends_as_its_highest_sequencer_says(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with open_catalog(url):
        pass  # the tables, before the writers race to make them
    all_events = events(7)
    parts = [all_events[i::WRITERS] for i in range(WRITERS)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=writer, args=(url, part)) for part in parts]
    for p in procs:
        p.start()
    with open_catalog(url) as cat:  # a person reviews one image while the writers run
        for _ in range(50):
            record = cat.get(KEYS[0])
            if record is not None:
                cat.review(record.id, [Label("tabby cat", 1.0)], "ana")
                break
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
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


def test_a_stale_review_does_not_undo_a_newer_write(tmp_path):
    with open_catalog(f"sqlite:///{tmp_path / 'c.db'}") as cat:
        original = Record(uri=KEYS[0], status=Status.LABELED, etag="1", sequencer=seq(1), labels=[Label("dog", 0.8)])
        cat.upsert_many([original])
        cat.upsert_many([replace(original, etag="2", sequencer=seq(2), labels=[Label("cat", 0.9)])])
        reviewed = cat.review(original.id, [Label("tabby cat", 1.0)], "ana")
        assert reviewed.etag == "2" and cat.get(original.id).sequencer == seq(2)  # read in the same transaction
