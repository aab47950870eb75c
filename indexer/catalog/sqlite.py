"""The embedded catalogue: one SQLite file (stdlib sqlite3), WAL mode, one writer and many readers.

`images` holds one row per record; `image_labels` one row per label name (parents included;
matched case-insensitively by a NOCASE column) with the confidence of that label, so label
filters and per-label confidence are index scans. SQL text is assembled from fixed fragments and
`?` placeholders only; values always travel as parameters.

The app's questions at 100k+ images (tests/bench/bench_ui.py) are answered from two tables
derived from `image_labels` in the same transactions that write it: `label_counts`, images per
label name (kept by triggers), the facets of an unfiltered query and the rarest label of a query
to start from; and `image_label_codes`, one row per image with its label rows as int32 codes
(label_counts.code) and float64 confidences, which facets count in numpy instead of grouping ~15
label rows per image in SQL: from the matching images' rows, or, for queries of labels and a
confidence only, from every image's rows held in memory while the data is unchanged. A catalogue
file written before these tables existed gets them filled when it is opened. Totals and facets
are kept per query while the data is unchanged (PRAGMA data_version, and the rows this
connection changed), so a query's next pages cost only their page.
"""

from __future__ import annotations

import json
import sqlite3
import string
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import TypeVar

import numpy as np

from indexer.catalog.base import (
    COUNT_FIELDS,
    Catalog,
    CatalogError,
    Cursor,
    DayCount,
    Page,
    Query,
    Sort,
    chunks,
    is_newer,
    label_rows_of,
    utc_iso,
)
from indexer.errors import CatalogUnavailable
from indexer.record import Label, Record, Source, Status, utcnow

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    bucket TEXT, key TEXT, version_id TEXT, etag TEXT, size INTEGER, content_type TEXT,
    last_modified TEXT, width INTEGER, height INTEGER, format TEXT,
    status TEXT NOT NULL, error TEXT, model_id TEXT, sequencer TEXT,
    indexed_at TEXT NOT NULL, reviewed_at TEXT, reviewed_by TEXT,
    top_confidence REAL NOT NULL DEFAULT -1,
    labels TEXT NOT NULL DEFAULT '[]',
    embedding BLOB
);
CREATE INDEX IF NOT EXISTS images_indexed_at ON images (indexed_at, id);
CREATE INDEX IF NOT EXISTS images_status ON images (status);
CREATE TABLE IF NOT EXISTS image_labels (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    name TEXT NOT NULL COLLATE NOCASE,
    confidence REAL NOT NULL,
    PRIMARY KEY (image_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS image_labels_name ON image_labels (name, confidence);
CREATE TABLE IF NOT EXISTS tombstones (
    id TEXT PRIMARY KEY,
    sequencer TEXT NOT NULL,
    deleted_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS label_counts (
    code INTEGER PRIMARY KEY,  -- names the label in image_label_codes; rows are never deleted, codes never reused
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    image_count INTEGER NOT NULL  -- images with the label at confidence >= 0 (what an unfiltered query counts)
);
CREATE TRIGGER IF NOT EXISTS image_labels_count AFTER INSERT ON image_labels BEGIN
    INSERT INTO label_counts (name, image_count) VALUES (new.name, new.confidence >= 0)
        ON CONFLICT (name) DO UPDATE SET image_count = image_count + (new.confidence >= 0);
END;
CREATE TRIGGER IF NOT EXISTS image_labels_uncount AFTER DELETE ON image_labels BEGIN
    UPDATE label_counts SET image_count = image_count - (old.confidence >= 0) WHERE name = old.name;
END;
CREATE TABLE IF NOT EXISTS image_label_codes (
    image_id TEXT PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    codes BLOB NOT NULL,  -- int32 little-endian, label_counts.code of each image_labels row of the image
    confidences BLOB NOT NULL  -- float64 little-endian, in the same order
) WITHOUT ROWID;
"""
COLUMNS = ("id", "uri", "bucket", "key", "version_id", "etag", "size", "content_type", "last_modified", "width",
           "height", "format", "status", "error", "model_id", "sequencer", "indexed_at", "reviewed_at",
           "reviewed_by", "top_confidence", "labels", "embedding")
DATES = ("last_modified", "indexed_at", "reviewed_at")
T = TypeVar("T")
MEMO_SIZE = 256  # totals and facets kept per query while the data is unchanged
COMPLEMENT = 0.75  # facets of a query most images match (at confidence 0) count the rest, from label_counts
IN_MEMORY = 4  # facets: load every image's labels (1 per image) rather than read 1 in 4 of them from SQL
DRIVE_COST = 3  # one label row started from (lookup + sort) against one images row walked in date order
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _marks(n: int) -> str:
    """`?, ?, ?`: placeholders for an IN list of n values."""
    return ", ".join("?" * n)


def _nocase(name: str) -> str:
    """What SQLite's NOCASE collation compares: ASCII letters folded, nothing else."""
    return name.translate(_ASCII_LOWER)


def _word_prefix(column: str, text: str) -> tuple[str, list[str]]:
    """`column` has a word starting with `text` (LIKE, with the text's own wildcards escaped)."""
    t = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"({column} LIKE ? ESCAPE '\\' OR {column} LIKE ? ESCAPE '\\')", [f"{t}%", f"% {t}%"]


def _matching(query: Query) -> Query:
    """The part of a query that decides which images match (not their order or page): the key of
    its total and facets."""
    return replace(query, sort=Sort.DATE, limit=1, cursor=None)


def _encode_labels(codes: Sequence[int], confidences: Sequence[float]) -> tuple[bytes, bytes]:
    return np.asarray(codes, dtype="<i4").tobytes(), np.asarray(confidences, dtype="<f8").tobytes()


@dataclass
class _Plan:
    """Where a query's matching images come from: `FROM {source} WHERE {where}` with `params`, the
    image id as `ids`. `driver`: started from the label rows of the query's rarest all_of label
    (`d`, the other all_of labels joined as `e0`, `e1`...), else from `images i`. `score`: the
    confidence sort's value from those rows, if that is all it needs."""

    source: str
    clauses: list[str]
    params: list
    ids: str
    driver: str | None = None
    score: str | None = None

    @property
    def where(self) -> str:
        return " AND ".join(self.clauses) or "1=1"


class SQLiteCatalog(Catalog):
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA cache_size=-65536")  # KiB: 64 MiB of pages (default 2 MiB)
            self._db.execute("PRAGMA mmap_size=268435456")  # reads of the first 256 MiB without a copy
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise CatalogError(f"cannot open the SQLite catalogue {path}: {exc}") from exc
        self._lock = threading.RLock()  # one connection shared by threads (Streamlit, pipeline)
        self._code_of: dict[str, int] = {}  # _nocase(name) -> label_counts.code, committed ones only
        self._name_of: dict[int, str] = {}
        self._memo_version: tuple[int, int] | None = None
        self._memo_values: OrderedDict[tuple, object] = OrderedDict()
        try:
            self._derive_missing()
        except sqlite3.Error as exc:
            self._db.close()
            raise CatalogError(f"cannot open the SQLite catalogue {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _derive_missing(self) -> None:
        """Fill label_counts and image_label_codes for a catalogue written before they existed (or
        images a version without them wrote since): counts recounted, codes kept, rows added."""
        missing = "SELECT (SELECT COUNT(*) FROM images) > (SELECT COUNT(*) FROM image_label_codes)"
        if not self._db.execute(missing).fetchone()[0]:
            return
        with self._lock, self._tx():
            if not self._db.execute(missing).fetchone()[0]:  # another process filled them meanwhile
                return
            self._db.execute("INSERT INTO label_counts (name, image_count) SELECT name, SUM(confidence >= 0) "
                             "FROM image_labels WHERE true GROUP BY name "
                             "ON CONFLICT (name) DO UPDATE SET image_count = excluded.image_count")
            self._db.execute("UPDATE label_counts SET image_count = 0 "
                             "WHERE NOT EXISTS (SELECT 1 FROM image_labels l WHERE l.name = label_counts.name)")
            code_of = {_nocase(n): c for c, n in self._db.execute("SELECT code, name FROM label_counts")}
            rows = self._db.execute(
                "SELECT image_id, name, confidence FROM image_labels l WHERE NOT EXISTS "
                "(SELECT 1 FROM image_label_codes c WHERE c.image_id = l.image_id) ORDER BY image_id")
            out = [(image_id, *_encode_labels([code_of[_nocase(n)] for _, n, _ in group], [c for *_, c in group]))
                   for image_id, group in ((i, list(g)) for i, g in groupby(rows, key=itemgetter(0)))]
            self._db.executemany("INSERT INTO image_label_codes VALUES (?, ?, ?)", out)
            self._db.execute("INSERT OR IGNORE INTO image_label_codes SELECT id, x'', x'' FROM images")

    # -- writes ----------------------------------------------------------------------------------

    def upsert_many(self, records: Iterable[Record]) -> int:
        records = list({r.id: r for r in records}.values())  # the same id twice in a batch: the last one wins
        if not records:
            return 0
        updates = ", ".join(f"{c}=excluded.{c}" for c in COLUMNS[1:])
        with self._lock, self._tx():
            applied = self._applied([r.id for r in records])
            rows, labels_of = [], {}
            for r in records:
                if not is_newer(r.sequencer, applied.get(r.id)):
                    continue
                labels = json.dumps([[lb.name, lb.confidence, str(lb.source), list(lb.parents)] for lb in r.labels])
                emb = None if r.embedding is None else np.asarray(r.embedding, dtype=np.float16).tobytes()
                top = r.top_label.confidence if r.top_label else -1.0
                rows.append((r.id, r.uri, r.bucket, r.key, r.version_id, r.etag, r.size, r.content_type,
                             utc_iso(r.last_modified), r.width, r.height, r.format, str(r.status), r.error, r.model_id,
                             r.sequencer or applied.get(r.id), utc_iso(r.indexed_at), utc_iso(r.reviewed_at),
                             r.reviewed_by, top, labels, emb))
                labels_of[r.id] = label_rows_of(r)
            ids = [(row[0],) for row in rows]
            self._db.executemany("DELETE FROM image_labels WHERE image_id=?", ids)
            self._db.executemany(
                f"INSERT INTO images ({', '.join(COLUMNS)}) VALUES ({_marks(len(COLUMNS))}) "
                f"ON CONFLICT(id) DO UPDATE SET {updates}", rows)
            self._db.executemany("INSERT INTO image_labels VALUES (?, ?, ?)",
                                 [(id_, name, conf) for id_, labels in labels_of.items() for name, conf in labels])
            code_of = self._codes({name for labels in labels_of.values() for name, _ in labels})
            self._db.executemany("INSERT OR REPLACE INTO image_label_codes VALUES (?, ?, ?)", [
                (id_, *_encode_labels([code_of[_nocase(n)] for n, _ in labels], [c for _, c in labels]))
                for id_, labels in labels_of.items()])
            self._db.executemany("DELETE FROM tombstones WHERE id=?", ids)
        self._code_of.update(code_of)  # committed: these codes are for good
        return len(rows)

    def delete(self, ids: Iterable[str], sequencer: str | None = None) -> int:
        ids = list(dict.fromkeys(ids))
        deleted = 0
        with self._lock, self._tx():
            applied = self._applied(ids)
            todo = [i for i in ids if is_newer(sequencer, applied.get(i))]
            for chunk in chunks(todo):
                deleted += self._db.execute(f"DELETE FROM images WHERE id IN ({_marks(len(chunk))})", chunk).rowcount
            now = utc_iso(utcnow())
            marks = [(i, sequencer or applied[i], now) for i in todo if sequencer or i in applied]
            self._db.executemany("INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?)", marks)
        return deleted

    def sequencers(self, ids: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return self._applied(ids)

    def _applied(self, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in chunks(list(ids)):
            marks = _marks(len(chunk))
            for id_, seq in self._db.execute(
                    f"SELECT id, sequencer FROM images WHERE sequencer IS NOT NULL AND id IN ({marks}) "
                    f"UNION ALL SELECT id, sequencer FROM tombstones WHERE id IN ({marks})", chunk + chunk):
                out[id_] = max(seq, out.get(id_, seq))
        return out

    def _codes(self, names: Iterable[str]) -> dict[str, int]:
        """label_counts.code per _nocase(name); names never seen are absent. In the writing
        transaction, call it after image_labels, whose trigger adds new names. New codes reach
        self._code_of only once committed (codes are never reused, so a cached one stays right)."""
        out, missing = {}, []
        for name in names:
            key = _nocase(name)
            if key in self._code_of:
                out[key] = self._code_of[key]
            else:
                missing.append(name)
        for chunk in chunks(missing):
            for code, name in self._db.execute(
                    f"SELECT code, name FROM label_counts WHERE name IN ({_marks(len(chunk))})", chunk):
                out[_nocase(name)] = code
        return out

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error: writes are all or nothing. A lock
        held past the connection's timeout (another writer) is CatalogUnavailable: retry later."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise CatalogUnavailable(f"the SQLite catalogue {self.path} is busy: {exc}") from exc
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- reads -----------------------------------------------------------------------------------

    def get(self, id_or_uri: str) -> Record | None:
        found = self._fetch_where("id=? OR uri=?", [id_or_uri, id_or_uri], embedding=True)
        return found[0] if found else None

    def get_many(self, ids: Sequence[str]) -> dict[str, Record]:
        out: dict[str, Record] = {}
        for chunk in chunks(ids):
            for r in self._fetch_where(f"id IN ({_marks(len(chunk))})", chunk, embedding=False):
                out[r.id] = r
        return out

    def search(self, query: Query) -> Page:
        cursor = Cursor.decode(query.cursor, query.sort) if query.cursor else None
        with self._lock:
            total = self._memo(("total", _matching(query)), lambda: self._count(query))
            hits = self._page(query, cursor, total) if total else []
        more = len(hits) > query.limit
        hits = hits[:query.limit]
        by_id = self.get_many([h[0] for h in hits])
        records = [by_id[h[0]] for h in hits if h[0] in by_id]
        next_cursor = None
        if more and hits:
            next_cursor = Cursor(query.sort, hits[-1][1], hits[-1][0]).encode()
        return Page(records, total, next_cursor)

    def _count(self, q: Query) -> int:
        plan = self._plan(q)
        return self._db.execute(f"SELECT COUNT(*) FROM {plan.source} WHERE {plan.where}", plan.params).fetchone()[0]

    def _page(self, q: Query, cursor: Cursor | None, total: int) -> list[tuple[str, str | float]]:
        """(id, sort value) of the page after `cursor`, one more than the limit if there is more.

        Confidence of a single label: that label's index rows, read downwards from the cursor.
        Date: the images in date order from the cursor, checking each (the label filters are
        probes), unless the query's rarest label has so few images that sorting them all costs
        less than walking past the non-matching ones."""
        if q.sort == Sort.CONFIDENCE:
            plan = self._plan(q)
            if plan.score == "d.confidence":  # one label: its index rows are in page order
                keyset, keyset_params = self._keyset("d.confidence", "d.image_id", cursor)
                sql = (f"SELECT d.image_id, d.confidence FROM {plan.source} WHERE {plan.where} {keyset} "
                       f"ORDER BY d.confidence DESC, d.image_id DESC LIMIT ?")
                return self._db.execute(sql, [*plan.params, *keyset_params, q.limit + 1]).fetchall()
            score, score_params = (plan.score, []) if plan.score else self._score(q, plan.ids)
            keyset, keyset_params = self._keyset("score", "id", cursor)
            sql = (f"SELECT id, score FROM (SELECT {plan.ids} AS id, {score} AS score FROM {plan.source} "
                   f"WHERE {plan.where}) WHERE 1=1 {keyset} ORDER BY score DESC, id DESC LIMIT ?")
            return self._db.execute(sql, [*score_params, *plan.params, *keyset_params, q.limit + 1]).fetchall()
        plan = self._plan(q, images=True)
        if plan.driver is not None:
            walk = (q.limit + 1) * self._memo(("images",), self._images) / total  # rows read in date order
            if self._label_images([plan.driver]).get(_nocase(plan.driver), 0) * DRIVE_COST > walk:
                plan = self._plan(q, drive=False)
        keyset, keyset_params = self._keyset("i.indexed_at", "i.id", cursor)
        sql = (f"SELECT i.id, i.indexed_at FROM {plan.source} WHERE {plan.where} {keyset} "
               f"ORDER BY i.indexed_at DESC, i.id DESC LIMIT ?")
        return self._db.execute(sql, [*plan.params, *keyset_params, q.limit + 1]).fetchall()

    @staticmethod
    def _keyset(value: str, id_: str, cursor: Cursor | None) -> tuple[str, list]:
        """After the cursor in (value DESC, id DESC) order: a row value, which an index on (value, id)
        seeks to."""
        if cursor is None:
            return "", []
        return f"AND ({value}, {id_}) < (?, ?)", [cursor.value, cursor.id]

    def _images(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def facets(self, query: Query, size: int = 50) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._memo(("facets", _matching(query), size), lambda: self._facets(query, size)))

    def _facets(self, q: Query, size: int) -> list[tuple[str, int]]:
        if _matching(q) == _matching(Query()):  # no filter: every image, every label
            return self._db.execute("SELECT name, image_count FROM label_counts WHERE image_count > 0 "
                                    "ORDER BY image_count DESC, name LIMIT ?", [size]).fetchall()
        counts = self._label_counts_in_memory(q) if self._in_memory_pays(q) else self._label_counts_in_sql(q)
        found = np.flatnonzero(counts)
        names = self._names(found.tolist())
        ranked = sorted(zip(names, counts[found].tolist(), strict=True), key=lambda nc: (-nc[1], _nocase(nc[0])))
        return ranked[:size]

    def _in_memory_pays(self, q: Query) -> bool:
        """Whether to count a query's facets from every image's labels in memory: it has label
        filters and a confidence only (the app's searches), and they are in memory already or
        reading its rarest label's images from SQL would take longer than loading them all."""
        if _matching(Query()) != _matching(replace(q, all_of=(), any_of=(), none_of=(), min_confidence=0.0)):
            return False
        if not q.all_of or self._memo_has(("labels",)):
            return True
        rarest = min(self._label_images(q.all_of).get(_nocase(n), 0) for n in q.all_of)
        return rarest * len(q.all_of) * IN_MEMORY > self._memo(("images",), self._images)

    def _label_counts_in_memory(self, q: Query) -> np.ndarray:
        """Images per label code among those matching a query of label filters only, from every
        image's label rows held in memory while the data is unchanged."""
        image, codes, confidences, images = self._memo(("labels",), self._labels_in_memory)
        confident = confidences >= q.min_confidence
        code_of = self._codes([*q.all_of, *q.any_of, *q.none_of])  # unknown names are absent

        def having(names: Sequence[str]) -> np.ndarray:
            wanted = list({code_of[k] for k in map(_nocase, names) if k in code_of})
            out = np.zeros(images, dtype=bool)
            if wanted:
                out[image[confident & (codes == wanted[0] if len(wanted) == 1 else np.isin(codes, wanted))]] = True
            return out

        match = np.ones(images, dtype=bool)
        for name in q.all_of:
            match &= having([name])
        if q.any_of:
            match &= having(q.any_of)
        if q.none_of:
            match &= ~having(q.none_of)
        if not (q.all_of or q.any_of) and q.min_confidence > 0:  # i.top_confidence >= it: some row is
            best = np.zeros(images, dtype=bool)
            best[image[confident]] = True
            match &= best
        return np.bincount(codes[confident & match[image]])

    def _labels_in_memory(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Every label row as (image ordinal, code, confidence), and the number of images: 16
        bytes a row (24 MiB at 100k synthetic images), read in 0.1 s."""
        rows = self._db.execute("SELECT codes, confidences FROM image_label_codes").fetchall()
        lengths = np.fromiter((len(c) for c, _ in rows), dtype=np.int64, count=len(rows)) // 4
        image = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
        codes = np.frombuffer(b"".join(c for c, _ in rows), dtype="<i4")
        confidences = np.frombuffer(b"".join(f for _, f in rows), dtype="<f8")
        return image, codes, confidences, len(rows)

    def _label_counts_in_sql(self, q: Query) -> np.ndarray:
        """Images per label code among those matching any query: the label codes of each matching
        image, or, when most images match (at confidence 0), of each other image, subtracted from
        label_counts."""
        with self._snapshot():
            total = self._memo(("total", _matching(q)), lambda: self._count(q))  # search has asked already
            most = q.min_confidence == 0 and total > COMPLEMENT * self._memo(("images",), self._images)
            if most:
                clauses, params, on_images = self._conditions(q, "c.image_id")
                source = "image_label_codes c" + (" CROSS JOIN images i ON i.id = c.image_id" if on_images else "")
                rows = self._db.execute(f"SELECT c.codes, c.confidences FROM {source} "
                                        f"WHERE NOT ({' AND '.join(clauses) or '1=1'})", params).fetchall()
                every = self._db.execute("SELECT code, image_count FROM label_counts").fetchall()
            else:
                plan = self._plan(q)
                rows = self._db.execute(f"SELECT c.codes, c.confidences FROM {plan.source} CROSS JOIN "
                                        f"image_label_codes c ON c.image_id = {plan.ids} WHERE {plan.where}",
                                        plan.params).fetchall()
        codes = np.frombuffer(b"".join(r[0] for r in rows), dtype="<i4")
        confidences = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f8")
        counts = np.bincount(codes[confidences >= q.min_confidence])
        if not most:
            return counts
        of_all = np.zeros(max((c for c, _ in every), default=-1) + 1, dtype=np.int64)
        for code, images in every:
            of_all[code] = images
        return of_all - np.pad(counts, (0, len(of_all) - len(counts)))

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Reads that must see the same data (WAL: one read transaction)."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def _names(self, codes: list[int]) -> list[str]:
        missing = [c for c in codes if c not in self._name_of]
        for chunk in chunks(missing):
            self._name_of.update(self._db.execute(
                f"SELECT code, name FROM label_counts WHERE code IN ({_marks(len(chunk))})", chunk).fetchall())
        return [self._name_of[c] for c in codes]

    def _label_images(self, names: Sequence[str]) -> dict[str, int]:
        """label_counts.image_count per _nocase(name); names never seen are absent."""
        rows = self._db.execute(f"SELECT name, image_count FROM label_counts WHERE name IN ({_marks(len(names))})",
                                list(names)).fetchall()
        return {_nocase(n): c for n, c in rows}

    def _memo(self, key: tuple, compute: Callable[[], T]) -> T:
        """compute(), or its value from an earlier call while the data is unchanged."""
        if self._memo_has(key):
            self._memo_values.move_to_end(key)
        else:
            self._memo_values[key] = compute()
            if len(self._memo_values) > MEMO_SIZE:
                self._memo_values.popitem(last=False)
        return self._memo_values[key]

    def _memo_has(self, key: tuple) -> bool:
        # other connections' commits, and rows this one changed
        version = (self._db.execute("PRAGMA data_version").fetchone()[0], self._db.total_changes)
        if version != self._memo_version:
            self._memo_values.clear()
            self._memo_version = version
        return key in self._memo_values

    def label_counts_per_day(self, query: Query, labels: Sequence[str] | None = None) -> list[DayCount]:
        where, params = self._where(query)
        only = ""
        if labels:
            only = f"AND l.name IN ({_marks(len(labels))})"
            params = [*params, *labels]
        sql = (f"SELECT substr(i.indexed_at, 1, 10) AS day, l.name, COUNT(*) FROM image_labels l "
               f"JOIN images i ON i.id = l.image_id WHERE l.confidence >= ? AND {where} {only} "
               f"GROUP BY day, l.name ORDER BY day, l.name")
        with self._lock:
            rows = self._db.execute(sql, [query.min_confidence, *params]).fetchall()
        return [DayCount(d, n, c) for d, n, c in rows]

    def counts(self, query: Query, field: str, size: int = 50) -> list[tuple[str, int]]:
        if field not in COUNT_FIELDS:
            raise CatalogError(f"cannot count by {field!r}; one of {', '.join(COUNT_FIELDS)}")
        where, params = self._where(query)
        if field == "day":  # the latest `size` days, oldest first
            sql = (f"SELECT * FROM (SELECT substr(i.indexed_at, 1, 10) AS v, COUNT(*) AS n FROM images i "
                   f"WHERE {where} GROUP BY v ORDER BY v DESC LIMIT ?) ORDER BY v")
        else:  # the column, chosen from COUNT_FIELDS above
            sql = (f"SELECT i.{field} AS v, COUNT(*) AS n FROM images i WHERE {where} "
                   f"GROUP BY v ORDER BY n DESC, v LIMIT ?")
        with self._lock:
            return [(v, n) for v, n in self._db.execute(sql, [*params, size]).fetchall()]

    def _nearest(self, target: Record, k: int) -> list[tuple[Record, float]]:
        vec = target.embedding.astype(np.float32)
        best_ids: list[str] = []
        best_scores = np.empty(0, dtype=np.float32)
        with self._lock:
            # embeddings of another model live in another space (and may have another size)
            cur = self._db.execute(
                "SELECT id, embedding FROM images WHERE embedding IS NOT NULL AND id != ? AND model_id IS ? "
                "AND length(embedding) = ?", [target.id, target.model_id, vec.size * 2])
            while chunk := cur.fetchmany(4096):
                mat = np.frombuffer(b"".join(e for _, e in chunk), dtype=np.float16).reshape(len(chunk), -1)
                scores = np.concatenate([best_scores, mat.astype(np.float32) @ vec])
                ids = best_ids + [i for i, _ in chunk]
                top = np.argsort(-scores, kind="stable")[:k]
                best_ids, best_scores = [ids[t] for t in top], scores[top]
        by_id = self.get_many(best_ids)
        return [(by_id[i], float(s)) for i, s in zip(best_ids, best_scores, strict=True) if i in by_id]

    # -- helpers ---------------------------------------------------------------------------------

    def _plan(self, q: Query, images: bool = False, drive: bool = True) -> _Plan:
        """Start from the rarest all_of label's rows (fewest images per label_counts) when the query
        has one and `drive`, else from images. `images`: the images row is needed (i.indexed_at)."""
        if not (q.all_of and drive):
            clauses, params, _ = self._conditions(q, "i.id")
            return _Plan("images i", clauses, params, "i.id")
        counts = self._label_images(q.all_of)
        names = sorted(q.all_of, key=lambda n: counts.get(_nocase(n), 0))
        clauses, params, on_images = self._conditions(q, "d.image_id", all_of=False)
        source, joined = "image_labels d", []
        for k, name in enumerate(names[1:]):  # CROSS JOIN: in this order, each a primary key lookup
            source += f" CROSS JOIN image_labels e{k} ON e{k}.image_id = d.image_id AND e{k}.name = ? " \
                      f"AND e{k}.confidence >= ?"
            joined += [name, q.min_confidence]
        if images or on_images:
            source += " CROSS JOIN images i ON i.id = d.image_id"
        score = None
        if not (q.any_of or q.text):  # the best of the all_of labels' confidences (one-argument max aggregates)
            score = f"max(d.confidence, {', '.join(f'e{k}.confidence' for k in range(len(names) - 1))})" \
                if len(names) > 1 else "d.confidence"
        return _Plan(source, ["d.name = ?", "d.confidence >= ?", *clauses],
                     [*joined, names[0], q.min_confidence, *params], "d.image_id", names[0], score)

    def _where(self, q: Query) -> tuple[str, list]:
        clauses, params, _ = self._conditions(q, "i.id")
        return " AND ".join(["1=1", *clauses]), params

    def _conditions(self, q: Query, ids: str, all_of: bool = True) -> tuple[list[str], list, bool]:
        """The query's filters on the image whose id is `ids` (labels as probes of image_labels;
        those of all_of unless the plan joins them), and whether one reads the images row."""
        clauses, params = [], []
        has = f"EXISTS (SELECT 1 FROM image_labels l2 WHERE l2.image_id = {ids} AND l2.confidence >= ? AND "
        for name in q.all_of if all_of else ():
            clauses.append(has + "l2.name = ?)")
            params += [q.min_confidence, name]
        if q.any_of:
            clauses.append(has + f"l2.name IN ({_marks(len(q.any_of))}))")
            params += [q.min_confidence, *q.any_of]
        if q.none_of:
            clauses.append("NOT " + has + f"l2.name IN ({_marks(len(q.none_of))}))")
            params += [q.min_confidence, *q.none_of]
        if q.text:
            like, like_params = _word_prefix("l2.name", q.text)
            clauses.append(has + like + ")")
            params += [q.min_confidence, *like_params]
        labels = len(clauses)  # the ones after read the images row
        if not (q.all_of or q.any_of or q.text) and q.min_confidence > 0:
            clauses.append("i.top_confidence >= ?")
            params.append(q.min_confidence)
        if q.status:
            clauses.append("i.status = ?")
            params.append(str(q.status))
        if q.review_below is not None:
            clauses.append("i.reviewed_at IS NULL AND (i.status != ? OR i.top_confidence < ?)")
            params += [str(Status.LABELED), q.review_below]
        if q.source_prefix:
            clauses.append("substr(i.uri, 1, ?) = ?")
            params += [len(q.source_prefix), q.source_prefix]
        if q.since:
            clauses.append("i.indexed_at >= ?")
            params.append(utc_iso(q.since))
        if q.until:
            clauses.append("i.indexed_at < ?")
            params.append(utc_iso(q.until))
        return clauses, params, len(clauses) > labels

    def _score(self, q: Query, ids: str) -> tuple[str, list]:
        """The confidence of the matched label (best of them), or the best label with no label query."""
        names = q.matched_labels
        if not names and not q.text:
            return "i.top_confidence", []
        conds, params = [], []
        if names:
            conds.append(f"l3.name IN ({_marks(len(names))})")
            params += list(names)
        if q.text:
            like, like_params = _word_prefix("l3.name", q.text)
            conds.append(like)
            params += like_params
        sql = (f"COALESCE((SELECT MAX(l3.confidence) FROM image_labels l3 WHERE l3.image_id = {ids} "
               f"AND ({' OR '.join(conds)})), -1)")
        return sql, params

    def _fetch_where(self, where: str, params: list, embedding: bool) -> list[Record]:
        cols = [c for c in COLUMNS if embedding or c != "embedding"]
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(cols)} FROM images WHERE {where}", params).fetchall()
        return [self._record(dict(zip(cols, row, strict=True))) for row in rows]

    @staticmethod
    def _record(row: dict) -> Record:
        labels = [Label(n, c, Source(s), tuple(p)) for n, c, s, p in json.loads(row.pop("labels"))]
        emb = row.pop("embedding", None)
        row.pop("top_confidence")
        for key in DATES:
            row[key] = datetime.fromisoformat(row[key]) if row[key] else None
        return Record(**{**row, "status": Status(row["status"])}, labels=labels,
                      embedding=None if emb is None else np.frombuffer(emb, dtype=np.float16).astype(np.float32))
