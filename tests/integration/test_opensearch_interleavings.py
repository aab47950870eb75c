"""The OpenSearch conditional-write protocol (OpenSearchCatalog._apply) at the exact moments two
writers can meet, on the OpenSearch API (osmem-server): one writer's change is made to land
between another's read and its write, by running it from inside the first one's request (a hook
on that catalogue's own client, real requests both). Each ends as the newest change says. (Found
by a review of the protocol; the random race is tests/integration/test_concurrent_writers.py.)"""

from __future__ import annotations

import pytest

from indexer.catalog import open_catalog
from indexer.catalog.opensearch import _doc
from indexer.record import Label, Record, Status, normalise_sequencer
from indexer.settings import Settings

KEY = "s3://bucket/photo.jpg"
SETTINGS = Settings(opensearch={"embedding_dim": 3})


def seq(n: int) -> str:
    return normalise_sequencer(f"{n:016X}")


def rec(etag: str, n: int | None = None) -> Record:
    return Record(uri=KEY, status=Status.LABELED, etag=etag, sequencer=seq(n) if n else None,
                  labels=[Label("cat", 0.9)])


@pytest.fixture
def two(osmem_clone):
    with open_catalog(osmem_clone.url, SETTINGS) as a, open_catalog(osmem_clone.url, SETTINGS) as b:
        yield a, b


def once(fn):
    done = []

    def run():
        if not done:
            done.append(fn())

    return run


def test_a_create_landing_while_a_delete_reads_is_removed_again(two):
    deleter, creator = two
    real = deleter.client.mget
    create = once(lambda: creator.upsert_many([rec("10", 10)]))

    def mget(index, **kw):  # the deleter has read the record (absent); the older create runs whole now
        out = real(index=index, **kw)
        if index == deleter.alias:
            create()
        return out

    deleter.client.mget = mget
    deleter.delete([rec("x").id], sequencer=seq(20))
    deleter.client.mget = real
    assert deleter.get(rec("x").id) is None  # deleted at 20: the create of 10 does not stay behind it


def test_a_backfill_create_expecting_nothing_loses_to_a_delete_landing_first(two):
    backfill, events = two
    real = backfill._bulk
    delete = once(lambda: events.delete([rec("x").id], sequencer=seq(20)))

    def bulk(actions, refresh=None):  # the backfill's check passed; the delete event lands before its write
        if actions and actions[0]["_index"] == backfill.alias:
            delete()
        return real(actions, refresh)

    backfill._bulk = bulk
    backfill.upsert_many([rec("backfill")], expected={rec("x").id: None})
    assert events.get(rec("x").id) is None


def test_an_unsequenced_write_does_not_take_a_registered_event_s_sequencer(two):
    event, folder = two
    event.upsert_many([rec("10", 10)])
    real = event._bulk
    unsequenced = once(lambda: folder.upsert_many([rec("unsequenced")]))

    def bulk(actions, refresh=None):  # event 20 has registered; an unsequenced write lands before its record
        if actions and actions[0]["_index"] == event.alias:
            unsequenced()
        return real(actions, refresh)

    event._bulk = bulk
    assert event.upsert_many([rec("20", 20)]) == 1
    got = folder.get(rec("x").id)
    assert (got.etag, got.sequencer) == ("20", seq(20))  # the newer event's bytes, under its sequencer


def test_a_late_copy_of_an_old_delete_does_not_remove_a_newer_record(osmem_clone):
    with open_catalog(osmem_clone.url, SETTINGS) as cat:
        r = rec("30", 30)  # what the earlier code could leave: create 30's record beside delete 20's tombstone
        cat.client.index(index=cat.alias, id=r.id, body=_doc(r, r.sequencer), refresh=True)
        cat.client.index(index=cat.tombstones, id=r.id, refresh=True,
                         body={"sequencer": seq(20), "deleted_at": "2026-11-01T00:00:00+00:00"})
        assert cat.delete([r.id], sequencer=seq(20)) == 0
        assert cat.get(r.id).etag == "30"
