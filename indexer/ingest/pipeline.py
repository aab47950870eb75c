"""One pipeline for every entrance: source item -> bytes -> decoded image -> labels -> record.

Stages hand typed values on (after clip-retrieval's reader -> mapper -> writer): the skip check
drops unchanged items; a thread pool reads and decodes (Pillow releases the GIL while decoding, so
this overlaps the model); the labeller runs in batches; the writer upserts each batch.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from indexer.catalog import Catalog
from indexer.catalog.base import is_newer
from indexer.images import DecodedImage, ImageError, decode
from indexer.model.labeller import Labeller
from indexer.model.people import face_labels
from indexer.model.properties import property_labels
from indexer.record import Record, Status, record_id
from indexer.settings import ImageLimits, Settings
from indexer.sources.base import Fetched, ObjectMissing, ReadError, Source, SourceItem, SourceUnavailable


@dataclass(frozen=True)
class Decoded:
    """An item after read + decode: its pixels, or why there are none (the hand-off to labelling)."""

    item: SourceItem  # as read: the store's version, etag and size when it has them
    image: DecodedImage | None
    etag: str | None
    error: str | None = None
    reason: str | None = None  # the failure's kind in a few words, for reports
    retry: bool = False  # failed for a reason outside the bytes: try again next run
    missing: bool = False  # the object is gone
    deferred: bool = False  # the store failed: write nothing, the caller retries
    content_hash: str | None = None  # sha256 of the bytes read, hex (exact duplicates); None if none were


def read_item(source: Source, item: SourceItem) -> Fetched | Decoded:
    """The item's bytes, or a Decoded saying why not; never raises for one bad item."""
    try:
        return source.read(item)
    except SourceUnavailable as exc:
        return Decoded(item, None, item.etag, str(exc), "store unavailable", deferred=True)
    except ObjectMissing as exc:
        return Decoded(item, None, item.etag, str(exc), exc.reason, retry=True, missing=True)
    except ReadError as exc:
        return Decoded(item, None, item.etag, str(exc), exc.reason, retry=True)
    except ImageError as exc:  # refused before reading: empty, too large
        return Decoded(item, None, item.etag, str(exc), exc.reason)


def decode_fetched(fetched: Fetched, limits: ImageLimits, size: int, preview: int = 0) -> Decoded:
    """Decode read bytes into a model input (and a preview for the face detector, when it wants
    one: Labeller.preview_side); a bad image is a value, never an exception."""
    item, data = fetched.item, fetched.data
    etag = item.etag or hashlib.md5(data, usedforsecurity=False).hexdigest()
    digest = hashlib.sha256(data).hexdigest()  # the bytes in memory: exact copies, whatever their names
    try:
        return Decoded(item, decode(data, limits, size, preview), etag, content_hash=digest)
    except ImageError as exc:  # a deadline depends on the machine's load: tried again next run
        return Decoded(item, None, etag, str(exc), exc.reason, retry=exc.reason == "decode deadline",
                       content_hash=digest)
    except Exception as exc:  # a decoder bug must fail this item, not end the batch
        return Decoded(item, None, etag, f"unexpected decoder error: {type(exc).__name__}: {exc}", "decoder bug",
                       content_hash=digest)


def label_records(labeller: Labeller, batch: Sequence[Decoded]) -> list[Record]:
    """One model batch over the decoded images; a record per item (FAILED for those without pixels)."""
    ok = [d for d in batch if d.image is not None]
    predictions = labeller.predict(np.stack([d.image.pixels for d in ok])) if ok else []
    faces = labeller.find_faces([d.image.preview for d in ok])
    seen = {id(d): pf for d, pf in zip(ok, zip(predictions, faces, strict=True), strict=True)}
    model_id = labeller.model_id
    records = []
    for d in batch:
        # a decode failure carries the model id: unchanged bytes fail the same way, so they are
        # skipped next run; a read failure carries none, so it is retried
        base = dict(uri=d.item.uri, bucket=d.item.bucket, key=d.item.key, version_id=d.item.version_id,
                    etag=d.etag, size=d.item.size, last_modified=d.item.last_modified,
                    sequencer=d.item.sequencer, model_id=None if d.retry else model_id,
                    content_hash=d.content_hash)
        if d.image is None:
            records.append(Record(status=Status.FAILED, error=d.error, **base))
            continue
        p, found = seen[id(d)]
        m = d.image.metadata
        records.append(Record(
            status=Status.LABELED, width=d.image.width, height=d.image.height, format=d.image.format,
            content_type=d.image.content_type, embedding=p.embedding, faces=found, **base,
            taken_at=m.taken_at, camera=m.camera, lens=m.lens, focal_length=m.focal_length,
            exposure_time=m.exposure_time, f_number=m.f_number, iso=m.iso, latitude=m.latitude,
            longitude=m.longitude, altitude=m.altitude,
            labels=(p.labels(labeller.vocabulary) + face_labels(found)
                    + property_labels(d.image.pixels, d.image.width, d.image.height)),
        ))
    return records


@dataclass
class Summary:
    labelled: int = 0
    skipped: int = 0  # unchanged, or an event older than what was applied
    failed: int = 0
    removed: int = 0  # gone from the source (remove_missing)
    seconds: float = 0.0
    stage_seconds: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (uri, error)
    deferred: list[tuple[str, str]] = field(default_factory=list)  # (uri, error): not written, retry

    @property
    def images_per_second(self) -> float:
        return (self.labelled + self.failed) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "labelled": self.labelled, "skipped": self.skipped, "failed": self.failed, "removed": self.removed,
            "seconds": round(self.seconds, 3), "images_per_second": round(self.images_per_second, 2),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "failures": [{"uri": u, "error": e} for u, e in self.failures],
            "deferred": [{"uri": u, "error": e} for u, e in self.deferred],
        }


Progress = Callable[[Record | None], None]  # called once per item: its record, or None when skipped


def unchanged(item: SourceItem, existing: Record | None, model_id: str) -> bool:
    """Same bytes (etag, else size + mtime) labelled by the same model: nothing to do. Read
    failures carry no model id, so they are always retried."""
    if existing is None or existing.model_id != model_id:
        return False
    if item.etag and existing.etag:
        return item.etag == existing.etag
    return item.size == existing.size and item.last_modified == existing.last_modified


class Pipeline:
    """`remove_missing`: an item whose object is gone is removed from the catalogue (event-driven
    callers: the object was deleted after the event) instead of becoming a FAILED record (listings)."""

    def __init__(self, settings: Settings, labeller: Labeller, catalog: Catalog, source: Source,
                 remove_missing: bool = False) -> None:
        self.settings = settings
        self.labeller = labeller
        self.catalog = catalog
        self.source = source
        self.remove_missing = remove_missing

    def run(self, items: Iterable[SourceItem], force: bool = False, progress: Progress | None = None) -> Summary:
        summary = Summary()
        self.labeller.load()  # start-up, not throughput
        started = time.perf_counter()
        progress = progress or (lambda _: None)
        todo = self._skip_unchanged(items, force, summary, progress)
        batch: list[Decoded] = []
        for decoded in self._decode_all(todo, summary):
            batch.append(decoded)
            if len(batch) >= self.settings.batch_size:
                self._label_and_write(batch, summary, progress)
                batch = []
        self._label_and_write(batch, summary, progress)
        summary.seconds = time.perf_counter() - started
        return summary

    def _skip_unchanged(self, items: Iterable[SourceItem], force: bool, summary: Summary,
                        progress: Progress) -> Iterator[SourceItem]:
        model_id = self.labeller.model_id
        chunk: list[SourceItem] = []

        def check(chunk: list[SourceItem]) -> Iterator[SourceItem]:
            t = time.perf_counter()
            ids = [record_id(i.uri) for i in chunk]
            existing = {} if force else self.catalog.get_many(ids)
            ordered = [i for i, item in zip(ids, chunk, strict=True) if item.sequencer]
            applied = self.catalog.sequencers(ordered) if ordered else {}  # replays and late events
            summary.stage_seconds["skip_check"] += time.perf_counter() - t
            for item, id_ in zip(chunk, ids, strict=True):
                stale = not is_newer(item.sequencer, applied.get(id_))
                if stale or (not force and unchanged(item, existing.get(id_), model_id)):
                    summary.skipped += 1
                    progress(None)
                else:
                    yield item

        for item in items:
            chunk.append(item)
            if len(chunk) >= 256:
                yield from check(chunk)
                chunk = []
        yield from check(chunk)

    def _decode_all(self, items: Iterator[SourceItem], summary: Summary) -> Iterator[Decoded]:
        """Read + decode in a bounded thread pool, yielding in input order."""
        size = self.labeller.input_size
        in_flight: deque[Future[Decoded]] = deque()
        window = max(2 * self.settings.batch_size, 4 * self.settings.decode_workers)
        with ThreadPoolExecutor(self.settings.decode_workers, thread_name_prefix="decode") as pool:
            for item in items:
                in_flight.append(pool.submit(self._decode_one, item, size))
                if len(in_flight) >= window:
                    yield self._collect(in_flight.popleft(), summary)
            while in_flight:
                yield self._collect(in_flight.popleft(), summary)

    @staticmethod
    def _collect(future: Future[Decoded], summary: Summary) -> Decoded:
        t = time.perf_counter()
        result = future.result()
        summary.stage_seconds["decode_wait"] += time.perf_counter() - t
        return result

    def _decode_one(self, item: SourceItem, size: int) -> Decoded:
        fetched = read_item(self.source, item)
        if isinstance(fetched, Decoded):
            return fetched
        return decode_fetched(fetched, self.settings.limits, size, self.labeller.preview_side)

    def _label_and_write(self, batch: list[Decoded], summary: Summary, progress: Progress) -> None:
        for d in batch:
            if d.deferred:
                summary.deferred.append((d.item.uri, d.error or ""))
            elif d.missing and self.remove_missing:
                summary.removed += self.catalog.delete([record_id(d.item.uri)], sequencer=d.item.sequencer)
            else:
                continue
            progress(None)
        batch = [d for d in batch if not d.deferred and not (d.missing and self.remove_missing)]
        if not batch:
            return
        t = time.perf_counter()
        records = label_records(self.labeller, batch)
        summary.stage_seconds["label"] += time.perf_counter() - t
        t = time.perf_counter()
        self.catalog.upsert_many(records)  # a stored review of the same bytes stays (Catalog.upsert_many)
        summary.stage_seconds["write"] += time.perf_counter() - t
        for r in records:
            if r.status == Status.FAILED:
                summary.failed += 1
                summary.failures.append((r.uri, r.error or ""))
            else:
                summary.labelled += 1
            progress(r)
