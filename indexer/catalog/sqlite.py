"""The embedded catalogue: one SQLite file (stdlib sqlite3), WAL mode, one writer and many readers.

`images` holds one row per record; `image_labels` one row per label name (parents included;
matched case-insensitively by a NOCASE column) with the confidence of that label, so label
filters, per-label confidence and facets are index scans. SQL text is assembled from fixed
fragments and `?` placeholders only; values always travel as parameters.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np

from indexer.catalog.base import (
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
"""
COLUMNS = ("id", "uri", "bucket", "key", "version_id", "etag", "size", "content_type", "last_modified", "width",
           "height", "format", "status", "error", "model_id", "sequencer", "indexed_at", "reviewed_at",
           "reviewed_by", "top_confidence", "labels", "embedding")
DATES = ("last_modified", "indexed_at", "reviewed_at")


def _marks(n: int) -> str:
    """`?, ?, ?`: placeholders for an IN list of n values."""
    return ", ".join("?" * n)


def _word_prefix(column: str, text: str) -> tuple[str, list[str]]:
    """`column` has a word starting with `text` (LIKE, with the text's own wildcards escaped)."""
    t = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"({column} LIKE ? ESCAPE '\\' OR {column} LIKE ? ESCAPE '\\')", [f"{t}%", f"% {t}%"]


class SQLiteCatalog(Catalog):
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise CatalogError(f"cannot open the SQLite catalogue {path}: {exc}") from exc
        self._lock = threading.RLock()  # one connection shared by threads (Streamlit, pipeline)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes ----------------------------------------------------------------------------------

    def upsert_many(self, records: Iterable[Record]) -> int:
        records = list({r.id: r for r in records}.values())  # the same id twice in a batch: the last one wins
        if not records:
            return 0
        updates = ", ".join(f"{c}=excluded.{c}" for c in COLUMNS[1:])
        with self._lock, self._tx():
            applied = self._applied([r.id for r in records])
            rows, label_rows = [], []
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
                label_rows += [(r.id, name, conf) for name, conf in label_rows_of(r)]
            ids = [(row[0],) for row in rows]
            self._db.executemany("DELETE FROM image_labels WHERE image_id=?", ids)
            self._db.executemany(
                f"INSERT INTO images ({', '.join(COLUMNS)}) VALUES ({_marks(len(COLUMNS))}) "
                f"ON CONFLICT(id) DO UPDATE SET {updates}", rows)
            self._db.executemany("INSERT INTO image_labels VALUES (?, ?, ?)", label_rows)
            self._db.executemany("DELETE FROM tombstones WHERE id=?", ids)
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

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error: writes are all or nothing."""
        self._db.execute("BEGIN IMMEDIATE")
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
        where, params = self._where(query)
        score, score_params = self._score(query)
        col = "indexed_at" if query.sort == Sort.DATE else "score"
        sql = f"SELECT i.id AS id, i.indexed_at AS indexed_at, {score} AS score FROM images i WHERE {where}"
        keyset, keyset_params = "", []
        if query.cursor:
            c = Cursor.decode(query.cursor, query.sort)
            keyset = f"WHERE ({col} < ? OR ({col} = ? AND id < ?))"
            keyset_params = [c.value, c.value, c.id]
        page_sql = f"SELECT id, indexed_at, score FROM ({sql}) {keyset} ORDER BY {col} DESC, id DESC LIMIT ?"
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM images i WHERE {where}", params).fetchone()[0]
            hits = self._db.execute(page_sql, [*score_params, *params, *keyset_params, query.limit + 1]).fetchall()
        more = len(hits) > query.limit
        hits = hits[:query.limit]
        by_id = self.get_many([h[0] for h in hits])
        records = [by_id[h[0]] for h in hits if h[0] in by_id]
        next_cursor = None
        if more and hits:
            last = hits[-1]
            next_cursor = Cursor(query.sort, last[1] if query.sort == Sort.DATE else last[2], last[0]).encode()
        return Page(records, total, next_cursor)

    def facets(self, query: Query, size: int = 50) -> list[tuple[str, int]]:
        where, params = self._where(query)
        sql = (f"SELECT l.name, COUNT(*) AS n FROM image_labels l JOIN images i ON i.id = l.image_id "
               f"WHERE l.confidence >= ? AND {where} GROUP BY l.name ORDER BY n DESC, l.name LIMIT ?")
        with self._lock:
            rows = self._db.execute(sql, [query.min_confidence, *params, size]).fetchall()
        return [(n, c) for n, c in rows]

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

    def _where(self, q: Query) -> tuple[str, list]:
        clauses, params = ["1=1"], []
        has = "EXISTS (SELECT 1 FROM image_labels l2 WHERE l2.image_id = i.id AND l2.confidence >= ? AND "
        for name in q.all_of:
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
        if not (q.all_of or q.any_of or q.text) and q.min_confidence > 0:
            clauses.append("i.top_confidence >= ?")
            params.append(q.min_confidence)
        if q.status:
            clauses.append("i.status = ?")
            params.append(str(q.status))
        if q.source_prefix:
            clauses.append("substr(i.uri, 1, ?) = ?")
            params += [len(q.source_prefix), q.source_prefix]
        if q.since:
            clauses.append("i.indexed_at >= ?")
            params.append(utc_iso(q.since))
        if q.until:
            clauses.append("i.indexed_at < ?")
            params.append(utc_iso(q.until))
        return " AND ".join(clauses), params

    def _score(self, q: Query) -> tuple[str, list]:
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
        sql = (f"COALESCE((SELECT MAX(l3.confidence) FROM image_labels l3 WHERE l3.image_id = i.id "
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

