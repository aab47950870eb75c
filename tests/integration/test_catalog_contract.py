"""The catalogue contract: every backend gives the same records, in the same order, for the same
queries. Backends are the `backend` fixture's params; the OpenSearch issue adds its own."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from indexer.catalog import Catalog, CatalogError, Query, Sort, open_catalog
from indexer.catalog.base import Cursor, InvalidCursor
from indexer.catalog.sqlite import SQLiteCatalog
from indexer.record import Label, Record, Status, normalise_sequencer
from indexer.settings import Settings

DAY0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def rec(name: str, labels: dict[str, float], day: int = 0, status: Status = Status.LABELED,
        parents: dict[str, tuple[str, ...]] | None = None, emb: list[float] | None = None,
        prefix: str = "file:///photos/") -> Record:
    parents = parents or {}
    vec = None
    if emb is not None:
        v = np.asarray(emb, dtype=np.float32)
        vec = v / np.linalg.norm(v)
    return Record(
        uri=f"{prefix}{name}.jpg", status=status, size=1000, etag=name, model_id="m@1",
        labels=[Label(n, c, parents=parents.get(n, ())) for n, c in labels.items()],
        error="broken" if status == Status.FAILED else None,
        embedding=vec, indexed_at=DAY0 + timedelta(days=day),
    )


CORPUS = [
    rec("tabby", {"tabby cat": 0.7, "cat": 0.92}, 0, parents={"tabby cat": ("cat", "animal")}, emb=[1, 0, 0]),
    rec("persian", {"Persian cat": 0.3, "cat": 0.4}, 0, parents={"Persian cat": ("cat", "animal")}, emb=[0.9, 0.1, 0]),
    rec("catdog", {"cat": 0.9, "dog": 0.2}, 1, emb=[0.5, 0.5, 0]),
    rec("beagle", {"beagle": 0.6, "dog": 0.6}, 1, parents={"beagle": ("dog", "animal")}, emb=[0, 1, 0]),
    rec("espresso", {"espresso": 0.95, "coffee": 0.95, "food": 0.96}, 2, emb=[0, 0, 1]),
    rec("car", {"sports car": 0.8, "vehicle": 0.85}, 2, emb=[0.1, 0, 0.9], prefix="s3://bucket/cars/"),
    rec("broken", {}, 2, status=Status.FAILED),
]
for _minute, _r in enumerate(CORPUS):  # newest first: broken, car, espresso, beagle, catdog, persian, tabby
    _r.indexed_at += timedelta(minutes=_minute)


@pytest.fixture(params=["sqlite", "opensearch"])
def backend(request, tmp_path) -> Catalog:
    if request.param == "sqlite":
        with open_catalog(f"sqlite:///{tmp_path / 'contract.db'}") as cat:
            yield cat
        return
    clone = request.getfixturevalue("osmem_clone")  # a fresh in-memory OpenSearch for this test
    settings = Settings(opensearch={"embedding_dim": 3})
    with open_catalog(clone.url, settings) as cat:
        yield cat


def sqlite_only(backend: Catalog, why: str) -> None:
    if not isinstance(backend, SQLiteCatalog):
        pytest.skip(why)


@pytest.fixture
def cat(backend: Catalog) -> Catalog:
    backend.upsert_many(CORPUS)
    return backend


def names(page_or_records) -> list[str]:
    records = getattr(page_or_records, "records", page_or_records)
    return [r.uri.rsplit("/", 1)[-1].removesuffix(".jpg") for r in records]


def search_all(cat: Catalog, **kw) -> list[str]:
    return names(cat.search(Query(limit=100, **kw)))


def test_round_trip_by_id_and_uri(cat):
    original = CORPUS[0]
    for key in (original.id, original.uri):
        got = cat.get(key)
        assert got is not None and got.id == original.id
        assert got.labels == original.labels
        assert got.indexed_at == original.indexed_at
        assert got.label_names == ["tabby cat", "cat", "animal"]
        assert np.allclose(got.embedding, original.embedding, atol=1e-3)
    assert cat.get("file:///nowhere.jpg") is None


def test_upsert_replaces_never_duplicates(cat):
    changed = rec("tabby", {"tiger cat": 0.8}, 3)
    cat.upsert_many([changed, changed])
    assert cat.search(Query()).total == len(CORPUS)
    assert cat.get(changed.id).labels == [Label("tiger cat", 0.8)]
    assert search_all(cat, all_of=("tabby cat",)) == []


def test_upsert_is_all_or_nothing(backend):
    good = rec("good", {"cat": 0.5})
    clash = Record(uri=CORPUS[0].uri, status=Status.LABELED, id="another-id-same-uri")
    backend.upsert_many([CORPUS[0]])
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own driver error
        backend.upsert_many([good, clash])
    assert backend.get(good.id) is None


def test_all_any_none(cat):
    assert search_all(cat, all_of=("cat",)) == ["catdog", "persian", "tabby"]
    assert search_all(cat, all_of=("cat", "dog")) == ["catdog"]
    assert search_all(cat, any_of=("dog", "coffee")) == ["espresso", "beagle", "catdog"]
    assert search_all(cat, all_of=("cat",), none_of=("dog",)) == ["persian", "tabby"]
    assert search_all(cat, all_of=("CAT",)) == search_all(cat, all_of=("cat",))


def test_parent_concepts_match(cat):
    assert search_all(cat, all_of=("animal",)) == ["beagle", "persian", "tabby"]


def test_min_confidence_applies_to_the_matched_label(cat):
    # catdog is a confident cat but only a 0.2 dog: it must not match dog >= 0.5
    assert search_all(cat, all_of=("dog",), min_confidence=0.5) == ["beagle"]
    assert search_all(cat, any_of=("dog", "cat"), min_confidence=0.5) == ["beagle", "catdog", "tabby"]
    # excluded labels use the same threshold: a 0.2 dog is not "a dog"
    assert search_all(cat, all_of=("cat",), none_of=("dog",), min_confidence=0.5) == ["catdog", "tabby"]
    # no label in the query: the threshold applies to the best label
    assert "persian" not in search_all(cat, min_confidence=0.5)


def test_text_prefix_of_a_word(cat):
    assert search_all(cat, text="espr") == ["espresso"]
    assert search_all(cat, text="cat") == ["catdog", "persian", "tabby"]  # "cat", "tabby cat"
    assert search_all(cat, text="at") == []  # not a word prefix
    assert search_all(cat, text="100%") == []


def test_status_source_and_dates(cat):
    assert search_all(cat, status=Status.FAILED) == ["broken"]
    assert search_all(cat, source_prefix="s3://bucket/") == ["car"]
    assert search_all(cat, source_prefix="file:///photos/b") == ["broken", "beagle"]
    assert search_all(cat, since=DAY0 + timedelta(days=1), until=DAY0 + timedelta(days=2)) == ["beagle", "catdog"]


def test_default_order_is_newest_first(cat):
    got = cat.search(Query(limit=100)).records
    assert [r.indexed_at for r in got] == sorted((r.indexed_at for r in got), reverse=True)


def test_sort_by_confidence_of_matched_label(cat):
    assert search_all(cat, all_of=("cat",), sort=Sort.CONFIDENCE) == ["tabby", "catdog", "persian"]
    assert search_all(cat, any_of=("dog",), sort=Sort.CONFIDENCE) == ["beagle", "catdog"]


@pytest.mark.parametrize("sort", list(Sort))
@pytest.mark.parametrize("limit", [1, 3, 7])
def test_pagination_without_gaps_or_repeats(backend, sort, limit):
    many = [rec(f"img{i:03d}", {"cat": round(0.1 + (i % 5) * 0.2, 2)}, day=i % 3) for i in range(25)]
    for r in many[::4]:
        r.indexed_at = DAY0  # ties on the sort key are broken by id
    backend.upsert_many(many)
    expected = names(backend.search(Query(all_of=("cat",), sort=sort, limit=100)))
    seen, cursor = [], None
    while True:
        page = backend.search(Query(all_of=("cat",), sort=sort, limit=limit, cursor=cursor))
        assert page.total == 25
        seen += names(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected and len(set(seen)) == 25


def test_bad_cursor_is_a_clear_error(cat):
    with pytest.raises(CatalogError, match="invalid cursor"):
        cat.search(Query(cursor="not-a-cursor"))
    token = cat.search(Query(limit=1)).next_cursor
    with pytest.raises(CatalogError, match="sort=date"):
        cat.search(Query(limit=1, cursor=token, sort=Sort.CONFIDENCE))
    # forged values of the wrong kind for their sort: refused as the caller's input on both backends,
    # never passed to the store (OpenSearch failed to parse them as a 503; SQLite restarted silently)
    for sort, value in ((Sort.TAKEN, "not a date"), (Sort.DATE, "zzz"), (Sort.CONFIDENCE, "high"), (Sort.TAKEN, [1]),
                        (Sort.DATE, {"a": 1})):
        with pytest.raises(InvalidCursor, match="invalid cursor"):
            cat.search(Query(limit=1, sort=sort, cursor=Cursor(sort, value, "z").encode()))


def test_facets_add_up(cat):
    for query in (Query(), Query(all_of=("cat",)), Query(any_of=("cat", "dog"), min_confidence=0.5)):
        facets = dict(cat.facets(query))
        for label, count in facets.items():
            refined = Query(all_of=(*query.all_of, label), any_of=query.any_of, min_confidence=query.min_confidence)
            assert cat.search(refined).total == count, (query, label)
    assert dict(cat.facets(Query(all_of=("cat",))))["cat"] == 3
    assert dict(cat.facets(Query()))["animal"] == 3


def test_label_counts_per_day(cat):
    counts = {(d.day, d.label): d.count for d in cat.label_counts_per_day(Query(), labels=["cat", "dog"])}
    assert counts == {("2026-11-01", "cat"): 2, ("2026-11-02", "cat"): 1, ("2026-11-02", "dog"): 2}


def test_similar_by_cosine(cat):
    sqlite_only(cat, "osmem-server rejects knn queries; the request body is checked in test_opensearch")
    hits = cat.similar(CORPUS[0].id, k=3)
    assert names([r for r, _ in hits]) == ["persian", "catdog", "car"]
    assert hits[0][1] == pytest.approx(0.9 / np.linalg.norm([0.9, 0.1]), abs=1e-2)
    with pytest.raises(CatalogError, match="no image"):
        cat.similar("missing")


def test_similar_stays_within_one_model(cat):
    sqlite_only(cat, "osmem-server rejects knn queries; the request body is checked in test_opensearch")
    other = rec("other-model", {"cat": 0.9}, emb=[1, 0, 0, 0, 0])  # another model, another size
    other.model_id = "moths@2"
    same_direction = rec("other-model-3d", {"cat": 0.9}, emb=[1, 0, 0])
    same_direction.model_id = "moths@2"
    cat.upsert_many([other, same_direction])
    hits = names([r for r, _ in cat.similar(CORPUS[0].id, k=10)])
    assert "other-model" not in hits and "other-model-3d" not in hits
    assert len(hits) == 5  # every other image with an embedding from model m@1


def test_delete(cat):
    assert cat.delete([CORPUS[0].id, "missing"]) == 1
    assert cat.get(CORPUS[0].id) is None
    assert "tabby" not in search_all(cat, all_of=("cat",))
    assert dict(cat.facets(Query())).get("tabby cat") is None


def seq(n: int) -> str:
    return normalise_sequencer(f"{n:016X}")


def versioned(name: str, sequencer: int | None, label: str) -> Record:
    r = rec(name, {label: 0.9}, prefix="s3://bucket/")
    r.sequencer = None if sequencer is None else seq(sequencer)
    return r


def test_stale_and_replayed_writes_change_nothing(backend):
    # GIVEN the write of event 2 applied
    assert backend.upsert_many([versioned("k", 2, "dog")]) == 1
    # WHEN event 1 arrives late, and event 2 is delivered again
    assert backend.upsert_many([versioned("k", 1, "cat")]) == 0
    assert backend.upsert_many([versioned("k", 2, "cat")]) == 0
    # THEN the record is event 2's, once
    got = backend.get("s3://bucket/k.jpg")
    assert got.label_names == ["dog"] and got.sequencer == seq(2)
    assert backend.search(Query()).total == 1
    assert backend.upsert_many([versioned("k", 3, "cat")]) == 1
    assert backend.get("s3://bucket/k.jpg").label_names == ["cat"]


def test_a_delete_leaves_a_tombstone_that_late_creates_cannot_pass(backend):
    created = versioned("k", 1, "cat")
    backend.upsert_many([created])
    assert backend.delete([created.id], sequencer=seq(3)) == 1
    assert backend.upsert_many([versioned("k", 2, "cat")]) == 0  # older than the delete
    assert backend.get(created.id) is None
    assert backend.search(Query()).total == 0 and backend.facets(Query()) == []
    assert backend.sequencers([created.id, "unknown"]) == {created.id: seq(3)}
    assert backend.upsert_many([versioned("k", 4, "dog")]) == 1  # uploaded again, later
    assert backend.get(created.id).label_names == ["dog"]


def test_a_review_survives_a_relabel_of_the_same_bytes_written_after_it(backend):
    from dataclasses import replace

    from indexer.record import Label, Source

    record = versioned("k", 1, "cat")
    backend.upsert_many([record])
    relabel = replace(record, labels=[Label("dog", 0.7)], sequencer=None)  # read before the review, written after
    backend.review(record.id, [Label("tabby cat", 1.0)], "ana")
    assert backend.upsert_many([relabel]) == 1
    kept = backend.get(record.id)
    assert [(lb.name, lb.source) for lb in kept.labels] == [("tabby cat", Source.HUMAN)] and kept.reviewed_by == "ana"
    new_bytes = replace(relabel, etag="other")  # another photo under the key: back to the model
    backend.upsert_many([new_bytes])
    assert backend.get(record.id).label_names == ["dog"] and backend.get(record.id).reviewed_at is None
    backend.review(record.id, [Label("tabby cat", 1.0)], "ana")
    backend.upsert_many([new_bytes], keep_reviews=False)  # an undo: exactly the record given
    assert backend.get(record.id).label_names == ["dog"]


def test_a_write_expecting_what_it_saw_loses_to_an_event_that_came_since(backend):
    record = versioned("k", 1, "cat")
    backend.upsert_many([record])
    seen = backend.sequencers([record.id]).get(record.id)
    backend.upsert_many([versioned("k", 2, "dog")])  # a bucket event, after the backfill looked
    assert backend.upsert_many([versioned("k", None, "bird")], expected={record.id: seen}) == 0
    assert backend.get(record.id).label_names == ["dog"]
    assert backend.delete([record.id], expected={record.id: seen}) == 0 and backend.get(record.id) is not None
    now = backend.sequencers([record.id]).get(record.id)
    assert backend.upsert_many([versioned("k", None, "bird")], expected={record.id: now}) == 1
    assert backend.delete([record.id], expected={record.id: now}) == 1


def test_tombstones_older_than_sqs_keeps_a_message_are_pruned(backend):
    from datetime import timedelta

    old, recent = versioned("old", 1, "cat"), versioned("recent", 1, "dog")
    backend.upsert_many([old, recent])
    backend.delete([old.id, recent.id], sequencer=seq(2))
    assert backend.prune_tombstones() == 0  # deleted just now: within the 14 days an event may still come
    assert backend.sequencers([old.id, recent.id]) == {old.id: seq(2), recent.id: seq(2)}
    assert backend.prune_tombstones(older_than=timedelta(0)) == 2
    assert backend.sequencers([old.id, recent.id]) == {}
    assert backend.upsert_many([versioned("old", 1, "cat")]) == 1  # nothing left to order it by: it applies


def test_a_stale_delete_keeps_the_newer_record(backend):
    created = versioned("k", 5, "cat")
    backend.upsert_many([created])
    assert backend.delete([created.id], sequencer=seq(4)) == 0
    assert backend.get(created.id).label_names == ["cat"]


def test_writes_without_a_sequencer_apply_and_keep_the_order_mark(backend):
    created = versioned("k", 7, "cat")
    backend.upsert_many([created])
    assert backend.upsert_many([versioned("k", None, "dog")]) == 1  # a folder or backfill write
    assert backend.get(created.id).label_names == ["dog"]
    assert backend.sequencers([created.id]) == {created.id: seq(7)}
    assert backend.upsert_many([versioned("k", 6, "cat")]) == 0  # still older than what was applied
    assert backend.delete([created.id]) == 1  # a delete without a sequencer always applies
    assert backend.upsert_many([versioned("k", 6, "cat")]) == 0
    assert backend.upsert_many([versioned("k", 8, "cat")]) == 1


def test_readers_see_consistent_data_while_a_writer_writes(backend, tmp_path):
    sqlite_only(backend, "two connections to one SQLite file; OpenSearch readers are separate clients anyway")
    with open_catalog(f"sqlite:///{tmp_path / 'contract.db'}") as reader:
        errors: list[Exception] = []
        totals: list[int] = []

        def write() -> None:
            for b in range(20):
                backend.upsert_many([rec(f"w{b}-{i}", {"cat": 0.5}) for i in range(50)])

        writer = threading.Thread(target=write)
        writer.start()
        while writer.is_alive():
            try:
                totals.append(reader.search(Query(all_of=("cat",), limit=5)).total)
            except Exception as exc:
                errors.append(exc)
        writer.join()
        assert not errors
        assert totals == sorted(totals) and all(t % 50 == 0 for t in totals)
        assert reader.search(Query(all_of=("cat",))).total == 1000


# -- the app's stats and review queue ---------------------------------------------------------------

def test_counts_per_day_status_model_and_error(cat):
    assert cat.counts(Query(), "day") == [("2026-11-01", 2), ("2026-11-02", 2), ("2026-11-03", 3)]
    assert cat.counts(Query(), "day", size=1) == [("2026-11-03", 3)]  # the latest days
    assert cat.counts(Query(), "status") == [("LABELED", 6), ("FAILED", 1)]
    assert cat.counts(Query(all_of=("cat",)), "model_id") == [("m@1", 3)]
    assert cat.counts(Query(status=Status.FAILED), "error") == [("broken", 1)]
    with pytest.raises(CatalogError, match="cannot count by 'uri'"):
        cat.counts(Query(), "uri")


def test_the_review_queue_and_a_review(cat):
    queue = search_all(cat, review_below=0.9)  # not reviewed: FAILED, or best label under 0.9
    assert queue == ["broken", "car", "beagle", "persian"]
    persian = cat.get("file:///photos/persian.jpg")
    reviewed = cat.review(persian.id, [Label("Persian cat", 1.0, parents=("cat", "animal"))], "ana")
    assert reviewed.reviewed_by == "ana" and reviewed.labels[0].source == "human"
    assert search_all(cat, review_below=0.9) == ["broken", "car", "beagle"]  # out of the queue
    stored = cat.get(persian.id)
    assert [(lb.name, lb.confidence, str(lb.source)) for lb in stored.labels] == [("Persian cat", 1.0, "human")]
    assert stored.reviewed_at is not None and stored.embedding is not None
    assert "persian" in search_all(cat, all_of=("animal",), min_confidence=0.99)  # parents match, at 1.0
    with pytest.raises(CatalogError, match="no image"):
        cat.review("nope", [], "ana")


def test_a_sqlite_file_of_an_older_version_is_opened_and_migrated(tmp_path):
    """A catalogue written before `images` had its newest columns (faces) opens, reads and writes."""
    import sqlite3
    from dataclasses import replace

    path = tmp_path / "old.db"
    with open_catalog(f"sqlite:///{path}") as cat:
        cat.upsert_many(CORPUS[:2])
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE images DROP COLUMN faces")  # as the previous version made it
    db.commit()
    db.close()
    with open_catalog(f"sqlite:///{path}") as cat:
        assert cat.get(CORPUS[0].uri).faces == []
        cat.upsert_many([replace(CORPUS[1], faces=[(0.1, 0.2, 0.3, 0.4, 0.99)])])
        assert cat.get(CORPUS[1].uri).faces == [(0.1, 0.2, 0.3, 0.4, 0.99)]


def test_similar_images_by_the_same_weights_whatever_rules_labelled_them(tmp_path):
    """model_id names the weights and the rule files; embeddings compare by the weights alone."""
    from dataclasses import replace

    a = rec("a", {"cat": 0.9}, emb=[1, 0, 0])
    b = replace(rec("b", {"cat": 0.8}, emb=[0.9, 0.1, 0]), model_id="m@1+vocabulary@abc+mtcnn@def")
    other = replace(rec("c", {"cat": 0.8}, emb=[0.9, 0.1, 0]), model_id="m@2+vocabulary@abc")
    with open_catalog(f"sqlite:///{tmp_path / 'c.db'}") as cat:
        cat.upsert_many([a, b, other])
        assert [r.id for r, _ in cat.similar(a.id)] == [b.id]
        assert [r.id for r, _ in cat.similar(b.id)] == [a.id]


def test_a_name_that_is_not_text_names_no_record(cat):
    assert cat.get("/photos/caf\udce9.png") is None  # a Latin-1 file name, as os.fsdecode gives it


def test_what_photos_say_of_themselves_filters_on_both_backends(backend):
    from dataclasses import replace
    from datetime import UTC, datetime

    paris = replace(rec("paris", {"tower": 0.9}), taken_at=datetime(2019, 5, 3, 12, 20, tzinfo=UTC),
                    camera="Canon EOS 80D", lens="EF50mm", focal_length=50.0, exposure_time=0.004, f_number=2.8,
                    iso=400, latitude=48.8581833, longitude=2.2944444, altitude=35.0)
    winter = replace(rec("winter", {"snow": 0.8}), taken_at=datetime(2018, 12, 31, 23, 59, tzinfo=UTC),
                     camera="NIKON D3")
    scan = rec("scan", {"snow": 0.7})  # no EXIF at all
    backend.upsert_many([paris, winter, scan])

    def names(**kw):
        return sorted(r.uri.rsplit("/", 1)[-1] for r in backend.search(Query(**kw)).records)

    assert names(taken_since=datetime(2019, 1, 1, tzinfo=UTC), taken_until=datetime(2020, 1, 1, tzinfo=UTC)) == \
        ["paris.jpg"]
    assert names(taken_until=datetime(2019, 1, 1, tzinfo=UTC)) == ["winter.jpg"]  # no date taken: never in a range
    assert names(camera="canon eos 80d") == ["paris.jpg"]  # any case
    assert names(has_location=True) == ["paris.jpg"] and names(has_location=False) == ["scan.jpg", "winter.jpg"]
    assert names(has_date=False) == ["scan.jpg"]
    assert names(all_of=("snow",), has_date=True) == ["winter.jpg"]
    got = backend.get(paris.id)
    assert (got.taken_at, got.camera, got.lens, got.focal_length, got.exposure_time, got.f_number, got.iso,
            got.latitude, got.longitude, got.altitude) == (
        paris.taken_at, "Canon EOS 80D", "EF50mm", 50.0, 0.004, 2.8, 400, 48.8581833, 2.2944444, 35.0)
    assert backend.facets(Query(camera="NIKON D3")) == [("snow", 1)]


def dated(name: str, taken: datetime | None, labels: dict[str, float] | None = None, **fields) -> Record:
    from dataclasses import replace

    return replace(rec(name, labels or {"snow": 0.8}), taken_at=taken, **fields)


TAKEN = [  # by date taken, newest first: july, then the two of one instant (by id), december; undated last
    dated("march-a", datetime(2019, 3, 5, 10, 0, tzinfo=UTC)),
    dated("march-b", datetime(2019, 3, 5, 10, 0, tzinfo=UTC)),
    dated("july", datetime(2021, 7, 1, 8, 30, 0, 250_000, tzinfo=UTC)),
    # 23:30 at -02:00 on 31 March is 1 April in UTC: months are UTC months
    dated("april", datetime(2019, 3, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))),
    dated("december", datetime(2018, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)),
    dated("undated-1", None), dated("undated-2", None), dated("undated-3", None, {"snow": 0.8, "tree": 0.5}),
]


def by_taken(records: list[Record]) -> list[str]:
    dated_ = sorted((r for r in records if r.taken_at), key=lambda r: (r.taken_at, r.id), reverse=True)
    return names(dated_ + sorted((r for r in records if not r.taken_at), key=lambda r: r.id, reverse=True))


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_sort_by_date_taken_pages_newest_first_and_undated_last(backend, limit):
    backend.upsert_many(TAKEN)
    for query in (Query(sort=Sort.TAKEN, limit=limit), Query(sort=Sort.TAKEN, limit=limit, all_of=("snow",))):
        seen, cursor, pages = [], None, 0
        while True:
            page = backend.search(replace(query, cursor=cursor))
            assert page.total == len(TAKEN) and len(page.records) <= limit
            seen += names(page)
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == by_taken(TAKEN) and pages == -(-len(TAKEN) // limit)
    assert seen[:2] == ["july", "april"] and set(seen[-3:]) == {"undated-1", "undated-2", "undated-3"}
    assert names(backend.search(Query(sort=Sort.TAKEN, all_of=("tree",)))) == ["undated-3"]


def test_a_cursor_of_another_sort_is_refused_for_the_date_taken(backend):
    backend.upsert_many(TAKEN)
    cursor = backend.search(Query(limit=2)).next_cursor
    with pytest.raises(CatalogError, match="sort=taken"):
        backend.search(Query(sort=Sort.TAKEN, cursor=cursor))


def test_photos_per_month_taken_in_utc_oldest_first(backend):
    backend.upsert_many(TAKEN)
    assert backend.counts(Query(), "month_taken") == [("2018-12", 1), ("2019-03", 2), ("2019-04", 1), ("2021-07", 1)]
    assert backend.counts(Query(), "month_taken", size=2) == [("2019-04", 1), ("2021-07", 1)]  # the latest
    assert backend.counts(Query(all_of=("tree",)), "month_taken") == []  # undated photos are in no month
    assert backend.counts(Query(taken_since=datetime(2019, 1, 1, tzinfo=UTC)), "month_taken")[0] == ("2019-03", 2)


PLACES = [  # (latitude, longitude); distances from Notre-Dame (48.853, 2.3499): 0.3 km, 17 km, 343 km
    dated("paris", None, latitude=48.8566, longitude=2.3522),
    dated("versailles", None, latitude=48.8049, longitude=2.1204),
    dated("london", None, {"tower": 0.9}, latitude=51.5072, longitude=-0.1276),
    dated("suva", None, latitude=-18.1416, longitude=178.4419),  # Fiji, west of the antimeridian
    dated("taveuni", None, latitude=-16.85, longitude=179.97),
    dated("apia", None, latitude=-13.8333, longitude=-171.7667),  # Samoa, east of it
    dated("alert", None, latitude=82.5, longitude=-62.3),
    dated("pole", None, latitude=89.5, longitude=179.0),
    dated("scan", None),  # no position
]


def test_within_a_radius_of_a_point(backend):
    backend.upsert_many(PLACES)

    def near(lat, lon, km, **kw):
        return sorted(search_all(backend, near=(lat, lon, km), **kw))

    assert near(48.853, 2.3499, 1) == ["paris"]
    assert near(48.8566, 2.3522, 0.001) == ["paris"]  # a metre, the least a search takes, on both backends
    assert near(48.853, 2.3499, 20) == ["paris", "versailles"]
    assert near(48.853, 2.3499, 400) == ["london", "paris", "versailles"]
    assert near(48.853, 2.3499, 400, all_of=("tower",)) == ["london"]
    assert near(-17.5, 180.0, 250) == ["suva", "taveuni"]  # a circle across the antimeridian
    assert near(-17.5, -180.0, 1200) == ["apia", "suva", "taveuni"]
    assert near(89.9, 0.0, 100) == ["pole"]  # a circle over the pole: every longitude
    assert near(0.0, 0.0, 20_000) == sorted(names(PLACES[:-1]))  # the whole globe: every placed photo
    assert backend.search(Query(near=(48.853, 2.3499, 20))).total == 2


def test_inside_a_box_and_one_across_the_antimeridian(backend):
    backend.upsert_many(PLACES)

    def box(*bounds, **kw):
        return sorted(search_all(backend, within=bounds, **kw))

    assert box(48.0, -1.0, 52.0, 3.0) == ["london", "paris", "versailles"]
    assert box(48.0, 2.2, 49.0, 3.0) == ["paris"]
    assert box(-20.0, 170.0, -10.0, -170.0) == ["apia", "suva", "taveuni"]  # west > east: across 180°
    assert box(-20.0, 179.0, -10.0, -179.0) == ["taveuni"]
    assert box(-20.0, -170.0, -10.0, 170.0) == []  # the other way round: the rest of the world, no one there
    assert box(80.0, -180.0, 90.0, 180.0) == ["alert", "pole"]
    assert box(48.0, -1.0, 52.0, 3.0, near=(48.853, 2.3499, 20)) == ["paris", "versailles"]  # both: each holds
    assert backend.counts(Query(within=(-20.0, 170.0, -10.0, -170.0)), "status") == [("LABELED", 3)]


@pytest.mark.parametrize(("fields", "message"), [
    ({"near": (91.0, 0.0, 10.0)}, "latitude 91"), ({"near": (0.0, 181.0, 10.0)}, "longitude 181"),
    ({"near": (0.0, 0.0, 0.0)}, "radius of 0"), ({"near": (0.0, 0.0, 30_000.0)}, "from 1 m to 20,000 km"),
    ({"within": (0.0, 0.0, 0.0, 1.0)}, "has no area"), ({"within": (0.0, 5.0, 1.0, 5.0)}, "has no area"),
    ({"near": (float("nan"), 0.0, 1.0)}, "latitude nan"),
    ({"within": (10.0, 0.0, -10.0, 5.0)}, "south 10 is north of north -10"),
    ({"within": (-95.0, 0.0, 10.0, 5.0)}, "latitude -95"),
])
def test_geo_filters_out_of_range_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        Query(**fields)


def test_copies_by_content_and_by_embedding_on_both_backends(backend):
    from dataclasses import replace

    from indexer.catalog import duplicates

    same = "ab" * 32  # sha256 hex of the bytes
    records = [replace(r, content_hash=None if r.status == Status.FAILED else f"{n:064x}")
               for n, r in enumerate(CORPUS)]
    records = [replace(r, content_hash=same) if r.uri.endswith("/beagle.jpg") else r for r in records]
    copy = replace(rec("beagle copy", {"beagle": 0.6}, emb=[0, 1, 0]), content_hash=same)
    backend.upsert_many([*records, copy])
    assert names(backend.same_content(same)) == names(sorted([records[3], copy], key=lambda r: r.id))  # by id
    assert backend.same_content("cd" * 32) == [] and len(backend.same_content(same, limit=1)) == 1
    prints = list(backend.fingerprints(page=3))  # pages of 3: the paging is exercised
    assert [p[0] for p in prints] == sorted(r.id for r in [*CORPUS, copy])
    by_id = {p[0]: p for p in prints}
    assert by_id[copy.id][1:3] == (same, "m@1") and np.allclose(by_id[copy.id][3].astype(np.float32), [0, 1, 0])
    assert by_id[CORPUS[-1].id][1:] == (None, None, None)  # FAILED: no bytes' hash, no embedding
    assert all(p[2] is None and p[3] is None for p in backend.fingerprints(embeddings=False))

    found = duplicates.find(backend)
    assert (found.records, found.without_hash) == (8, 1)
    assert [sorted(g.ids) for g in found.exact] == [sorted([records[3].id, copy.id])]
    near = sorted(sorted(names(backend.get_many(list(g.ids)).values())) for g in found.near)
    assert near == [["car", "espresso"], ["persian", "tabby"]]  # cosine 0.99; the beagle and its copy: exact
    assert all(0.99 < g.lowest < 1 and g.similarity[0] == 1.0 for g in found.near)
    # lower, the cat-and-dog joins both sides, the beagle with its exact copy
    [wide] = [g for g in duplicates.find(backend, threshold=0.7).near if len(g.ids) > 2]
    assert sorted(names(backend.get_many(list(wide.ids)).values())) == sorted(
        ["tabby", "persian", "catdog", "beagle", "beagle copy"])
    assert duplicates.find(backend, exact_only=True).near == []


def test_near_copies_of_a_burst_group_around_leaders_on_both_backends(backend):
    """A burst or time-lapse: 8 frames, each 24 degrees from the next (cosine 0.914), so the first
    and last are 168 degrees apart. Linked pairs chain through all 8; a group must not."""
    from dataclasses import replace

    from indexer.catalog import duplicates

    angles = np.radians(np.arange(8) * 24)
    frames = [replace(rec(f"frame{k}", {"x": 0.5}, emb=[np.cos(a), np.sin(a), 0]), content_hash=f"{k:064x}")
              for k, a in enumerate(angles)]
    again = replace(rec("frame3 again", {"x": 0.5}, emb=[np.cos(angles[3]), np.sin(angles[3]), 0]),
                    content_hash=frames[3].content_hash)  # the same bytes as frame 3
    backend.upsert_many([*frames, again])
    stored = {p[0]: p[3].astype(np.float32) for p in backend.fingerprints()}

    found = duplicates.find(backend)
    assert [sorted(g.ids) for g in found.exact] == [sorted([frames[3].id, again.id])]
    grouped = [i for g in found.near for i in g.ids]
    assert len(grouped) == len(set(grouped)) >= 6  # no record in two groups; at most one frame per leader alone
    for g in found.near:
        leader = stored[g.ids[0]]
        for id_, sim in zip(g.ids, g.similarity, strict=True):
            assert 0.9 <= sim <= 1.0 and float(stored[id_] @ leader) >= 0.9 - 1e-3  # to the leader, not a neighbour
        assert len({i for i in g.ids if i != again.id}) <= 3  # within 25.8 degrees of the leader: 3 frames at most
    [with_copy] = [g for g in found.near if frames[3].id in g.ids]  # an exact copy comes with its frame
    assert again.id in with_copy.ids
    sims = dict(zip(with_copy.ids, with_copy.similarity, strict=True))
    assert sims[again.id] == sims[frames[3].id]  # the frame's cosine, not 1.0
