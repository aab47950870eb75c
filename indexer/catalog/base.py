"""The catalogue interface every backend implements, and the query it answers."""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np

from indexer.errors import CatalogError
from indexer.record import Label, Record, Source, Status, utcnow


class InvalidCursor(CatalogError):
    """A page cursor this catalogue did not issue, or issued for another sort: the caller's input."""

    http_status = 400


MAX_LIMIT = 5_000  # records a page holds: OpenSearch answers at most 10,000 a request (max_result_window)
MAX_TERMS = 32  # labels in one query (all, any and not together): SQLite joins one table per label
TOMBSTONE_RETENTION = timedelta(days=14)  # SQS keeps a message at most 14 days: no older event can still arrive
MAX_CURSOR_NUMBER = 2 ** 53  # what a cursor's sort value can be (microseconds, a confidence) and stay exact
MAX_RADIUS_KM = 20_000.0  # about half the Earth's circumference: a larger circle is the whole globe
MIN_RADIUS_KM = 0.001  # a metre: what a phone's GPS cannot tell apart anyway; OpenSearch refuses 0


class Sort(StrEnum):
    DATE = "date"  # newest indexed first
    CONFIDENCE = "confidence"  # confidence of the matched label, highest first
    TAKEN = "taken"  # newest taken first; photos without a date taken last (by id, like every tie)


@dataclass(frozen=True)
class Query:
    """What to find. Label matching is case-insensitive.

    `min_confidence` applies to the label matched (each `all_of` label, some `any_of` label, the
    `text` match, and the excluded `none_of` labels), never to another label of the same image;
    with no label in the query it applies to the image's best label.
    """

    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()
    min_confidence: float = 0.0
    text: str | None = None  # prefix of a word in a label name: "espr", "cat", "musical"
    status: Status | None = None
    source_prefix: str | None = None  # URI prefix: "s3://bucket/photos/", "file:///home/me/"
    since: datetime | None = None  # indexed_at >= since
    until: datetime | None = None  # indexed_at < until
    sort: Sort = Sort.DATE
    limit: int = 50
    cursor: str | None = None
    # the review queue: not reviewed yet, and FAILED, NOT_CLASSIFIED, or best label under this
    review_below: float | None = None
    taken_since: datetime | None = None  # taken_at >= (records without a date taken never match)
    taken_until: datetime | None = None  # taken_at <
    camera: str | None = None  # exactly this camera, any case: "Canon EOS 80D"
    has_location: bool | None = None  # with (True) or without (False) a GPS position
    has_date: bool | None = None  # with (True) or without (False) a date taken
    near: tuple[float, float, float] | None = None  # (latitude, longitude, radius in km): within it, great-circle
    within: tuple[float, float, float, float] | None = None  # (south, west, north, east); west > east crosses 180°

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, got {self.min_confidence}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"a page holds 1 to {MAX_LIMIT:,} records, not {self.limit}: page on with the cursor")
        terms = len(self.all_of) + len(self.any_of) + len(self.none_of)
        if terms > MAX_TERMS:
            raise ValueError(f"a search takes at most {MAX_TERMS} labels, not {terms}")
        if self.text is not None and len(self.text) > 200:
            raise ValueError(f"a text search takes at most 200 characters, not {len(self.text)}")
        for name in ("since", "until", "taken_since", "taken_until"):
            value = getattr(self, name)
            try:
                utc_iso(value)  # what the backends compare: year 1 at +01:00 is no UTC time
            except (OverflowError, ValueError):
                raise ValueError(f"{name} {value.isoformat()} is out of range: give a date from year 1 to 9999 "
                                 f"that stays so in UTC") from None
        if self.near is not None:
            lat, lon, radius = self.near
            _check_position("near", lat, lon)
            if not MIN_RADIUS_KM <= radius <= MAX_RADIUS_KM:
                raise ValueError(f"near: a radius of {radius:g} km is not from 1 m to {MAX_RADIUS_KM:,.0f} km")
        if self.within is not None:
            south, west, north, east = self.within
            _check_position("within", south, west)
            _check_position("within", north, east)
            if south > north:
                raise ValueError(f"within: south {south:g} is north of north {north:g}: give south, west, north, east")
            if south == north or west == east:  # OpenSearch refuses such a box; near: finds a point
                raise ValueError(f"within: a box from {south:g},{west:g} to {north:g},{east:g} has no area: give "
                                 "south below north and west apart from east")

    @property
    def matched_labels(self) -> tuple[str, ...]:
        return self.all_of + self.any_of


def _check_position(field: str, lat: float, lon: float) -> None:
    """A latitude and a longitude in degrees (NaN is neither)."""
    if not -90 <= lat <= 90:
        raise ValueError(f"{field}: latitude {lat:g} is not between -90 and 90")
    if not -180 <= lon <= 180:
        raise ValueError(f"{field}: longitude {lon:g} is not between -180 and 180")


COUNT_FIELDS = ("day", "model_id", "status", "error", "month_taken")  # what `Catalog.counts` groups by


@dataclass
class Page:
    records: list[Record]
    total: int  # matches for the query, all pages
    next_cursor: str | None = None  # None on the last page


@dataclass(frozen=True)
class DayCount:
    day: str  # YYYY-MM-DD, UTC
    label: str
    count: int


@dataclass
class Cursor:
    """Keyset position: the sort value and id of the last record of a page. A value of None (a
    TAKEN cursor only): the record had no date taken, so it is among the records that sort last."""

    sort: Sort
    value: str | float | None
    id: str

    def encode(self) -> str:
        raw = json.dumps([str(self.sort), self.value, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: Sort, dates: type = str) -> Cursor:
        """The cursor `token` holds, for `sort`; its value must be what this backend sorts by: a
        confidence, or a date as `dates` (SQLite's ISO text, OpenSearch's epoch number)."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            s, value, id_ = json.loads(raw)
            if not isinstance(id_, str) or isinstance(value, bool) or not isinstance(value, str | int | float | None):
                raise TypeError("a cursor holds a sort value and an id")
            if isinstance(value, int | float) and not abs(value) <= MAX_CURSOR_NUMBER:
                raise ValueError("a cursor's number is a date or a confidence")
            cursor = cls(Sort(s), value, id_)
            if value is None and cursor.sort != Sort.TAKEN:
                raise ValueError("only a photo's date taken can be missing")
            if value is not None:
                wanted = (int, float) if cursor.sort == Sort.CONFIDENCE else dates
                if not isinstance(value, wanted) or (isinstance(value, str) and not _iso(value)):
                    raise TypeError(f"a {cursor.sort} cursor holds no {type(value).__name__}")
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidCursor(f"invalid cursor {token[:80]!r}: not one this catalogue issued") from exc
        if cursor.sort != sort:
            raise InvalidCursor(f"cursor {token!r} was issued for sort={cursor.sort}, not sort={sort}")
        return cursor


def _iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def utc_iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with microseconds, fixed width, so that text order is time order (naive = UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def chunks(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    """Ids in slices a backend can send in one statement or request."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def label_rows_of(record: Record) -> list[tuple[str, float]]:
    """What label queries match: (name, confidence) per label name, parents included. A label's
    own confidence, else (a parent that is not a label itself) its best child's, a lower bound of
    the concept's probability. Names compare case-insensitively."""
    own: dict[str, tuple[str, float]] = {}
    inherited: dict[str, tuple[str, float]] = {}
    for lb in record.labels:
        for table, name in [(own, lb.name)] + [(inherited, p) for p in lb.parents]:
            key = name.casefold()
            table[key] = (name, max(table.get(key, (name, 0.0))[1], lb.confidence))
    return list({**inherited, **own}.values())


def kept_review(new: Record, old: Record | None) -> Record:
    """`new` as it replaces `old`: a person's review of the same bytes (etag) stays, their labels
    outranking the model's (a relabel by a new model, --force, a backfill --relabel); new bytes
    under the key go back to the model and the review queue. Backends apply it inside the write,
    so a review made while a relabel was under way is not lost to it."""
    if old is None or old.reviewed_at is None or new.reviewed_at is not None or old.etag != new.etag:
        return new
    exact = [lb for lb in new.labels if lb.source == Source.PROPERTY]  # facts, not judgements
    return replace(new, labels=[lb for lb in old.labels if lb.source == Source.HUMAN] + exact,
                   reviewed_at=old.reviewed_at, reviewed_by=old.reviewed_by)


def can_name_a_record(ref: str) -> bool:
    """Whether `ref` can be an id or a canonical URI: those are text (ids hex, URIs percent-encoded),
    so a string that is not (a file name's undecodable bytes, as surrogates) names none."""
    try:
        ref.encode()
    except UnicodeEncodeError:
        return False
    return True


def is_newer(incoming: str | None, applied: str | None) -> bool:
    """Whether a change carrying sequencer `incoming` may replace what was applied at `applied`.
    Sequencers are normalised (record.normalise_sequencer), so text order is event order; a change
    or a state without one (folders, backfill, emulators that omit it) cannot be ordered and applies."""
    return incoming is None or applied is None or incoming > applied


class Catalog(ABC):
    """One interface, two backends (SQLite default, OpenSearch production).

    Ordering (S3 delivers events at least once and out of order): each id keeps the last sequencer
    applied to it, on its record or, once deleted, on a tombstone that no query ever returns. A
    write or delete carrying a sequencer that is not newer than that one is ignored (`is_newer`), so
    a replayed or late event changes nothing and a late create cannot resurrect a deleted image.
    """

    @abstractmethod
    def upsert_many(self, records: Iterable[Record], keep_reviews: bool = True,
                    expected: Mapping[str, str | None] | None = None) -> int:
        """Insert or replace by id; stale records (see the class) are left out. A record without a
        sequencer keeps the one already applied. With `keep_reviews`, a stored review of the same
        bytes stays (`kept_review`; off only to write back a record exactly, as an undo does).
        `expected`: per id, the sequencer the caller saw applied (None: none); a record whose key
        has moved on since (a bucket event) is left out: the backfill's "events win". Checked
        inside the write (one transaction; conditional writes), never read first and written
        later. Returns how many were written."""

    @abstractmethod
    def delete(self, ids: Iterable[str], sequencer: str | None = None,
               expected: Mapping[str, str | None] | None = None) -> int:
        """Remove records by id, unless `sequencer` is stale for one (see the class) or the id's
        applied sequencer is no longer `expected`; leave a tombstone with the newest sequencer
        known. Returns how many records were removed."""

    @abstractmethod
    def prune_tombstones(self, older_than: timedelta = TOMBSTONE_RETENTION) -> int:
        """Forget the sequencers of keys deleted more than `older_than` ago (no event that old can
        still arrive, so none can be late enough to need them). Returns how many were forgotten."""

    @abstractmethod
    def sequencers(self, ids: Sequence[str]) -> dict[str, str]:
        """The last sequencer applied per id, from records and tombstones; ids with none are absent."""

    @abstractmethod
    def get(self, id_or_uri: str) -> Record | None:
        """One record, with its embedding, by id or canonical URI."""

    @abstractmethod
    def get_many(self, ids: Sequence[str]) -> dict[str, Record]:
        """Records by id, without embeddings (for skip checks). Missing ids are absent."""

    @abstractmethod
    def search(self, query: Query) -> Page: ...

    @abstractmethod
    def facets(self, query: Query, size: int = 50) -> list[tuple[str, int]]:
        """Label -> number of matching images carrying it (at >= min_confidence), most first."""

    @abstractmethod
    def label_counts_per_day(self, query: Query, labels: Sequence[str] | None = None) -> list[DayCount]:
        """Matching images per indexing day and label (all labels, or only `labels`)."""

    def counts(self, query: Query, field: str, size: int = 50) -> list[tuple[str, int]]:
        """Matching images per value of `field` (COUNT_FIELDS): per indexing day (YYYY-MM-DD, UTC,
        oldest first), per month taken (YYYY-MM, UTC, oldest first; photos without a date taken are
        in none), per model_id, status or error (most first). Days and months: the latest `size`."""
        raise CatalogError(f"{type(self).__name__} cannot count by {field}")

    def review(self, id_: str, labels: Sequence[Label], user: str) -> Record:
        """A person's decision: `labels` become the image's labels, as human labels (an empty list:
        no label applies). Human labels outrank the model's and survive relabelling
        (`kept_review`, applied by every write)."""
        reviewed = self._reviewed(id_, labels, user)
        self.upsert_many([reviewed])
        return reviewed

    def _reviewed(self, id_: str, labels: Sequence[Label], user: str) -> Record:
        """The record as the review leaves it (not written yet)."""
        record = self.get(id_)
        if record is None:
            raise CatalogError(f"no image with id or URI {id_!r} in the catalogue")
        return self._reviewed_record(record, labels, user)

    @staticmethod
    def _reviewed_record(record: Record, labels: Sequence[Label], user: str) -> Record:
        human = [Label(lb.name, 1.0, Source.HUMAN, tuple(lb.parents)) for lb in labels]
        human += [lb for lb in record.labels if lb.source == Source.PROPERTY]  # exact: no review changes them
        # no sequencer: a review is no bucket event, and the key keeps the one last applied
        return replace(record, labels=human, reviewed_at=utcnow(), reviewed_by=user, sequencer=None)

    def similar(self, id_: str, k: int = 10) -> list[tuple[Record, float]]:
        """The k images nearest by cosine among those labelled by the same model, best first, the
        image itself excluded."""
        target = self.get(id_)
        if target is None:
            raise CatalogError(f"no image with id or URI {id_!r} in the catalogue")
        if target.embedding is None:
            return []
        return self._nearest(target, k)

    @abstractmethod
    def _nearest(self, target: Record, k: int) -> list[tuple[Record, float]]:
        """`similar` for a target that has an embedding."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- copies (indexer.catalog.duplicates) -----------------------------------------------------

    def fingerprints(self, embeddings: bool = True, page: int = 1000) -> Iterator[
            tuple[str, str | None, str | None, np.ndarray | None]]:
        """Every record as (id, content_hash, embedding model, embedding), by id, read `page` records
        at a time (no lock or snapshot is held between pages). The model is `embedding_model` of the
        record's model_id (the embedding's space), the embedding as stored (float16 or float32).
        Without `embeddings`, both are None: what exact copies need, at a fraction of the reading."""
        raise CatalogError(f"{type(self).__name__} cannot list what duplicates are found by")

    def same_content(self, content_hash: str, limit: int = 100) -> list[Record]:
        """Records of the bytes whose sha256 is `content_hash` (exact copies), by id, without
        embeddings; at most `limit`."""
        raise CatalogError(f"{type(self).__name__} cannot find records by content")
