"""The backfill's stages, each a small callable with a typed hand-off (after clip-retrieval's
reader -> mapper -> writer): list + skip check -> fetch -> decode -> label -> write. The work is
`indexer.ingest.pipeline`'s (read_item, decode_fetched, label_records, unchanged); the stages add
batching, retries, a read-rate limit and a buffered writer. `runner` wires them with queues.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import TypeVar

from backfill.report import Report
from backfill.shard import Shard
from backfill.sources import Listing, Skipped, Unreadable
from indexer.catalog import Catalog
from indexer.errors import is_transient
from indexer.ingest.pipeline import Decoded, decode_fetched, label_records, read_item, unchanged
from indexer.model.labeller import Labeller
from indexer.record import Record, Status, record_id
from indexer.settings import ImageLimits
from indexer.sources.base import Fetched, SourceItem
from indexer.sources.uris import UriSource

CHECK_CHUNK = 256  # ids per catalogue lookup in the skip check
T = TypeVar("T")


class Relabel(StrEnum):
    CHANGED = "changed"  # the default: new, changed, or labelled by another model
    ALL = "all"  # --relabel: every image, skip check off
    MODEL_OLDER = "model-older"  # --relabel-model-older: only records another model labelled


def retried(call: Callable[[], T], attempts: int = 4, backoff: float = 1.0) -> T:
    """A catalogue call, retried with backoff when the failure is transient (indexer.errors): one 429
    or timeout must not end an hours-long run; a refused write or a bug ends it at once."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            time.sleep(backoff * 2 ** attempt)
    raise AssertionError("unreachable")


class Seen:
    """The event sequencer each in-flight id had at its skip check (None: none). The writer writes
    an id only if that has not changed: a bucket event applied meanwhile (a delete, a new upload)
    is newer than what the backfill read, and wins. Entries live from skip check to write."""

    def __init__(self) -> None:
        self._marks: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def __setitem__(self, id_: str, mark: str | None) -> None:
        with self._lock:
            self._marks[id_] = mark

    def pop(self, id_: str) -> str | None:
        with self._lock:
            return self._marks.pop(id_, None)


class Lister:
    """Streams the items to do: the shard's entries, filtered by extension, minus those the
    catalogue already has as they should be (one lookup per CHECK_CHUNK items)."""

    def __init__(self, listing: Listing, shard: Shard, catalog: Catalog, model_id: str, report: Report,
                 stop: threading.Event, relabel: Relabel = Relabel.CHANGED,
                 extensions: frozenset[str] | None = None, limit: int | None = None, dry_run: bool = False) -> None:
        self.listing, self.shard, self.catalog, self.model_id = listing, shard, catalog, model_id
        self.report, self.stop, self.relabel = report, stop, relabel
        self.extensions, self.limit = extensions, limit
        self.seen, self.dry_run = Seen(), dry_run  # a dry run writes nothing: nothing to remember

    def __iter__(self) -> Iterator[SourceItem]:
        chunk: list[SourceItem] = []
        entries = iter(self.listing.items())
        while not self.stop.is_set() and not self._reached_limit():
            t = time.perf_counter()
            entry = next(entries, None)
            self.report.timed("list", time.perf_counter() - t)
            if entry is None:
                break
            if not self.listing.sharded and not self.shard.owns(entry.uri):
                self.report.add(other_shards=1)
                continue
            self.report.add(listed=1)
            if isinstance(entry, Unreadable):  # a failure with no record to write: counted and shown
                self.report.add(failed=1)
                self.report.fail(entry.uri, entry.reason, entry.error)
                continue
            reason = entry.reason if isinstance(entry, Skipped) else self._filtered(entry)
            if reason:
                self.report.skip(reason, entry.uri)
                continue
            chunk.append(entry)
            if len(chunk) >= CHECK_CHUNK:
                yield from self._check(chunk)
                chunk = []
        if self.stop.is_set():
            self.report.add(left=len(chunk))  # listed, never checked: the next run takes them
        else:
            yield from self._check(chunk)

    def _reached_limit(self) -> bool:
        return self.limit is not None and self.report.todo >= self.limit

    def _filtered(self, item: SourceItem) -> str | None:
        if item.uri.endswith("/"):
            return "folder marker"  # a zero-byte key the S3 console makes for a folder
        if item.key is not None and any(part.startswith(".") for part in item.key.split("/")):
            return "hidden file"  # as in a folder: .thumbnails/, macOS's ._photo.jpg beside each photo
        if self.extensions is None:
            return None
        suffix = PurePosixPath(item.key or item.uri).suffix.lower()
        return None if suffix in self.extensions else f"extension {suffix or '(none)'}"

    def _check(self, chunk: list[SourceItem]) -> Iterator[SourceItem]:
        if not chunk:
            return
        t = time.perf_counter()
        ids = [record_id(i.uri) for i in chunk]
        existing = {} if self.relabel == Relabel.ALL else retried(lambda: self.catalog.get_many(ids))
        applied = retried(lambda: self.catalog.sequencers(ids))
        self.report.timed("skip_check", time.perf_counter() - t)
        for position, (item, id_) in enumerate(zip(chunk, ids, strict=True)):
            if self._reached_limit():
                self.report.add(listed=position - len(chunk))  # listed, never looked at: not counted
                return
            reason = self._skip_reason(item, existing.get(id_))
            if reason:
                self.report.skip(reason, item.uri)
            else:
                self.report.add(todo=1)
                if not self.dry_run:
                    self.seen[id_] = applied.get(id_)
                yield item

    def _skip_reason(self, item: SourceItem, existing: Record | None) -> str | None:
        if self.relabel == Relabel.MODEL_OLDER:
            if existing is None:
                return "not in the catalogue (--relabel-model-older)"
            return "labelled by the current model" if existing.model_id == self.model_id else None
        if self.relabel == Relabel.CHANGED and unchanged(item, existing, self.model_id):
            return "unchanged (same bytes, same model)"
        return None


class RateLimit:
    """At most `per_second` source reads per second across all fetch threads (None: no limit)."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        time.sleep(max(0.0, slot - now))


class Fetcher:
    """SourceItem -> Fetched, or a Decoded saying why not. A store failure (S3 5xx, throttling after
    botocore's own retries, no connection) is retried `retries` times with jittered exponential
    backoff before the item is deferred. Once the run is stopping, items not yet read are left."""

    def __init__(self, reader: UriSource, report: Report, stop: threading.Event, retries: int = 4,
                 rate: RateLimit | None = None, backoff: float = 0.5, seen: Seen | None = None) -> None:
        self.reader, self.report, self.stop = reader, report, stop
        self.retries, self.rate, self.backoff, self.seen = retries, rate or RateLimit(None), backoff, seen or Seen()

    def __call__(self, item: SourceItem) -> Fetched | Decoded | None:
        attempt = 0
        while not self.stop.is_set():
            self.rate.wait()
            got = read_item(self.reader, item)
            if not (isinstance(got, Decoded) and got.deferred) or attempt >= self.retries:
                return got
            self.report.add(retries=1)
            self.stop.wait(min(30.0, self.backoff * 2 ** attempt) * random.uniform(0.5, 1.0))  # noqa: S311
            attempt += 1
        self.seen.pop(record_id(item.uri))
        self.report.add(left=1)  # stopping: not read, or still failing; the next run takes it
        return None


class Decoder:
    """Fetched -> Decoded (JPEGs in draft mode); failures pass through untouched."""

    def __init__(self, limits: ImageLimits, size: int, preview: int = 0) -> None:
        self.limits, self.size, self.preview = limits, size, preview  # preview: Labeller.preview_side

    def __call__(self, got: Fetched | Decoded) -> Decoded:
        return got if isinstance(got, Decoded) else decode_fetched(got, self.limits, self.size, self.preview)


@dataclass(frozen=True)
class Labelled:
    """The hand-off to the writer: records to upsert (with each failure's reason, in the same
    order) and the ids of objects deleted since they were listed."""

    records: list[Record]
    reasons: list[str | None]
    removals: list[str]


class Labelling:
    """A batch of Decoded -> one model batch -> Labelled. Deferred items are counted, not written."""

    def __init__(self, labeller: Labeller, report: Report, seen: Seen | None = None) -> None:
        self.labeller, self.report, self.seen = labeller, report, seen or Seen()

    def __call__(self, batch: list[Decoded]) -> Labelled:
        removals = []
        for d in batch:
            if d.deferred:
                self.seen.pop(record_id(d.item.uri))  # not written: nothing for the writer to check
                self.report.add(deferred=1)
                self.report.fail(d.item.uri, d.reason or "store unavailable", d.error or "")
            elif d.missing:
                removals.append(record_id(d.item.uri))
                self.report.fail(d.item.uri, d.reason or "deleted since listed", d.error or "")
        keep = [d for d in batch if not d.deferred and not d.missing]
        return Labelled(label_records(self.labeller, keep), [d.reason for d in keep], removals)


class Writer:
    """Buffers records and writes them in bulk; `flush()` is a no-op when empty and is called on
    every exit path. A failed write is retried; if the catalogue still refuses, the error ends the
    run (what was not written is redone by the next run, as the skip check finds it missing)."""

    def __init__(self, catalog: Catalog, report: Report, seen: Seen, size: int = 256, max_delay: float = 2.0,
                 retries: int = 3, backoff: float = 1.0) -> None:
        self.catalog, self.report, self.seen, self.size, self.max_delay = catalog, report, seen, size, max_delay
        self.retries, self.backoff = retries, backoff
        self.records: list[Record] = []
        self.reasons: list[str | None] = []
        self.removals: list[str] = []
        self._oldest = 0.0  # when the oldest buffered record arrived

    def add(self, labelled: Labelled) -> None:
        """Buffer; write when `size` records wait or the oldest has waited `max_delay` seconds (a
        killed run loses at most that much work)."""
        if not self.records and not self.removals:
            self._oldest = time.monotonic()
        self.records += labelled.records
        self.reasons += labelled.reasons
        self.removals += labelled.removals
        if len(self.records) + len(self.removals) >= self.size or time.monotonic() - self._oldest >= self.max_delay:
            self.flush()

    def _write(self, expected: dict[str, str | None]) -> None:
        # `expected`: checked again inside the write, so an event landing after the check below wins too
        self.catalog.upsert_many(self.records, expected=expected)
        if self.removals:
            self.catalog.delete(self.removals, expected=expected)

    def flush(self) -> None:
        if not self.records and not self.removals:
            return
        t = time.perf_counter()
        expected = self._leave_what_events_changed()
        retried(lambda: self._write(expected), self.retries + 1, self.backoff)
        self.report.timed("write", time.perf_counter() - t)
        for record, reason in zip(self.records, self.reasons, strict=True):
            if record.status == Status.FAILED:
                self.report.add(failed=1)
                self.report.fail(record.uri, reason or "failed", record.error or "")
            else:
                self.report.add(labelled=1)
        self.report.add(removed=len(self.removals))
        self.records, self.reasons, self.removals = [], [], []

    def _leave_what_events_changed(self) -> dict[str, str | None]:
        """Drop the writes and removals of ids a bucket event touched since their skip check: the
        event (a delete, a new upload) is newer than the bytes the backfill read. Without this a
        key deleted during the run would come back as a record of an object that is gone. Returns
        what was seen per id, for the write to check once more as it writes (`expected`)."""
        ids = [r.id for r in self.records] + self.removals
        now = retried(lambda: self.catalog.sequencers(ids))
        seen = {i: self.seen.pop(i) for i in ids}
        changed = {i for i in ids if now.get(i) != seen[i]}
        if not changed:
            return seen
        reason = "changed by a bucket event during the backfill"
        for r in self.records:
            if r.id in changed:
                self.report.skip(reason, r.uri)
        keep = [n for n, r in enumerate(self.records) if r.id not in changed]
        self.records = [self.records[n] for n in keep]
        self.reasons = [self.reasons[n] for n in keep]
        for i in self.removals:
            if i in changed:
                self.report.skip(reason, i)
        self.removals = [i for i in self.removals if i not in changed]
        return seen
