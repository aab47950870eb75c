"""SQLiteCatalog: the Catalog interface on one SQLite file, one connection shared by threads."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np

from indexer.catalog.base import (
    COUNT_FIELDS,
    TOMBSTONE_RETENTION,
    Catalog,
    CatalogError,
    Cursor,
    DayCount,
    Page,
    Query,
    can_name_a_record,
    chunks,
    is_newer,
    kept_review,
    label_rows_of,
    utc_iso,
)
from indexer.catalog.geo import distance_km
from indexer.catalog.sqlite.facets import Facets
from indexer.catalog.sqlite.label_counts import LabelCounts
from indexer.catalog.sqlite.memo import Memo
from indexer.catalog.sqlite.planning import DISTANCE, Planner, where
from indexer.catalog.sqlite.rows import record_of, row_of
from indexer.catalog.sqlite.schema import COLUMNS, encode_codes, marks, nocase, open_db, transaction
from indexer.record import Label, Record, embedding_model, utcnow


class SQLiteCatalog(Catalog):
    """The embedded catalogue (indexer.catalog.sqlite says how its tables serve which question)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_db(path)
        self._db.create_function(DISTANCE, 4, distance_km, deterministic=True)  # the `near` filter's exact check
        self._lock = threading.RLock()  # one connection shared by threads (Streamlit, pipeline)
        self._labels = LabelCounts(self._db)
        self._memo = Memo(self._db)
        self._planner = Planner(self._db, self._memo, self._labels)
        self._facets = Facets(self._db, self._memo, self._labels, self._planner)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes ----------------------------------------------------------------------------------

    def upsert_many(self, records: Iterable[Record], keep_reviews: bool = True,
                    expected: Mapping[str, str | None] | None = None) -> int:
        records = list({r.id: r for r in records}.values())  # the same id twice in a batch: the last one wins
        if not records:
            return 0
        with self._lock, transaction(self._db, self.path):
            written, code_of = self._write(records, keep_reviews, expected)
        self._labels.committed(code_of)
        return written

    def review(self, id_: str, labels: Sequence[Label], user: str) -> Record:
        """As Catalog.review, with the read and the write in one transaction: a write by another
        process lands before or after the review, never between its read and its write."""
        with self._lock, transaction(self._db, self.path):
            reviewed = self._reviewed(id_, labels, user)
            _, code_of = self._write([reviewed])
        self._labels.committed(code_of)
        return reviewed

    def _write(self, records: list[Record], keep_reviews: bool = True,
               expected: Mapping[str, str | None] | None = None) -> tuple[int, dict[str, int]]:
        """upsert_many's work, in the caller's transaction: (records written, label codes used)."""
        updates = ", ".join(f"{c}=excluded.{c}" for c in COLUMNS if c != "id")
        applied = self._applied([r.id for r in records])
        if expected is not None:
            records = [r for r in records if applied.get(r.id) == expected.get(r.id)]
        if keep_reviews:
            reviewed = {}
            for chunk in chunks([r.id for r in records]):
                reviewed.update({old.id: old for old in self._fetch_where(
                    f"reviewed_at IS NOT NULL AND id IN ({marks(len(chunk))})", chunk, embedding=False)})
            records = [kept_review(r, reviewed.get(r.id)) for r in records]
        rows, labels_of = [], {}
        for r in records:
            if not is_newer(r.sequencer, applied.get(r.id)):
                continue
            rows.append(row_of(r, r.sequencer or applied.get(r.id)))
            labels_of[r.id] = label_rows_of(r)
        ids = [(id_,) for id_ in labels_of]
        self._db.executemany("DELETE FROM image_labels WHERE image_id=?", ids)
        self._db.executemany(
            f"INSERT INTO images ({', '.join(COLUMNS)}) VALUES ({marks(len(COLUMNS))}) "
            f"ON CONFLICT(id) DO UPDATE SET {updates}", rows)
        self._db.executemany("INSERT INTO image_labels VALUES (?, ?, ?)",
                             [(id_, name, conf) for id_, labels in labels_of.items() for name, conf in labels])
        code_of = self._labels.codes({name for labels in labels_of.values() for name, _ in labels})
        self._db.executemany("INSERT OR REPLACE INTO image_label_codes VALUES (?, ?, ?)", [
            (id_, *encode_codes([code_of[nocase(n)] for n, _ in labels], [c for _, c in labels]))
            for id_, labels in labels_of.items()])
        self._db.executemany("DELETE FROM tombstones WHERE id=?", ids)
        return len(rows), code_of

    def delete(self, ids: Iterable[str], sequencer: str | None = None,
               expected: Mapping[str, str | None] | None = None) -> int:
        ids = list(dict.fromkeys(ids))
        deleted = 0
        with self._lock, transaction(self._db, self.path):
            applied = self._applied(ids)
            todo = [i for i in ids if is_newer(sequencer, applied.get(i))
                    and (expected is None or applied.get(i) == expected.get(i))]
            for chunk in chunks(todo):
                deleted += self._db.execute(f"DELETE FROM images WHERE id IN ({marks(len(chunk))})", chunk).rowcount
            now = utc_iso(utcnow())
            tombstones = [(i, sequencer or applied[i], now) for i in todo if sequencer or i in applied]
            self._db.executemany("INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?)", tombstones)
        return deleted

    def prune_tombstones(self, older_than: timedelta = TOMBSTONE_RETENTION) -> int:
        cutoff = utc_iso(utcnow() - older_than)
        with self._lock, transaction(self._db, self.path):
            return self._db.execute("DELETE FROM tombstones WHERE deleted_at < ?", (cutoff,)).rowcount

    def sequencers(self, ids: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return self._applied(ids)

    def _applied(self, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in chunks(list(ids)):
            places = marks(len(chunk))
            for id_, seq in self._db.execute(
                    f"SELECT id, sequencer FROM images WHERE sequencer IS NOT NULL AND id IN ({places}) "
                    f"UNION ALL SELECT id, sequencer FROM tombstones WHERE id IN ({places})", chunk + chunk):
                out[id_] = max(seq, out.get(id_, seq))
        return out

    # -- reads -----------------------------------------------------------------------------------

    def get(self, id_or_uri: str) -> Record | None:
        if not can_name_a_record(id_or_uri):
            return None
        found = self._fetch_where("id=? OR uri=?", [id_or_uri, id_or_uri], embedding=True)
        return found[0] if found else None

    def get_many(self, ids: Sequence[str]) -> dict[str, Record]:
        out: dict[str, Record] = {}
        for chunk in chunks(ids):
            for r in self._fetch_where(f"id IN ({marks(len(chunk))})", chunk, embedding=False):
                out[r.id] = r
        return out

    def _fetch_where(self, condition: str, params: list, embedding: bool) -> list[Record]:
        cols = [c for c in COLUMNS if embedding or c != "embedding"]
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(cols)} FROM images WHERE {condition}", params).fetchall()
        return [record_of(dict(zip(cols, row, strict=True))) for row in rows]

    def search(self, query: Query) -> Page:
        cursor = Cursor.decode(query.cursor, query.sort) if query.cursor else None
        with self._lock:
            total = self._planner.total(query)
            hits = self._planner.page(query, cursor, total) if total else []
        more = len(hits) > query.limit
        hits = hits[:query.limit]
        by_id = self.get_many([h[0] for h in hits])
        records = [by_id[h[0]] for h in hits if h[0] in by_id]
        next_cursor = None
        if more and hits:
            next_cursor = Cursor(query.sort, hits[-1][1], hits[-1][0]).encode()
        return Page(records, total, next_cursor)

    def facets(self, query: Query, size: int = 50) -> list[tuple[str, int]]:
        with self._lock:
            return self._facets.of(query, size)

    def label_counts_per_day(self, query: Query, labels: Sequence[str] | None = None) -> list[DayCount]:
        condition, params = where(query)
        only = ""
        if labels:
            only = f"AND l.name IN ({marks(len(labels))})"
            params = [*params, *labels]
        sql = (f"SELECT substr(i.indexed_at, 1, 10) AS day, l.name, COUNT(*) FROM image_labels l "
               f"JOIN images i ON i.id = l.image_id WHERE l.confidence >= ? AND {condition} {only} "
               f"GROUP BY day, l.name ORDER BY day, l.name")
        with self._lock:
            rows = self._db.execute(sql, [query.min_confidence, *params]).fetchall()
        return [DayCount(d, n, c) for d, n, c in rows]

    def counts(self, query: Query, field: str, size: int = 50) -> list[tuple[str, int]]:
        if field not in COUNT_FIELDS:
            raise CatalogError(f"cannot count by {field!r}; one of {', '.join(COUNT_FIELDS)}")
        condition, params = where(query)
        if field in ("day", "month_taken"):  # the latest `size` days or months, oldest first (UTC text: its prefix)
            column, length = ("indexed_at", 10) if field == "day" else ("taken_at", 7)
            sql = (f"SELECT * FROM (SELECT substr(i.{column}, 1, {length}) AS v, COUNT(*) AS n FROM images i "
                   f"WHERE {condition} AND i.{column} IS NOT NULL GROUP BY v ORDER BY v DESC LIMIT ?) ORDER BY v")
        else:  # the column, chosen from COUNT_FIELDS above
            sql = (f"SELECT i.{field} AS v, COUNT(*) AS n FROM images i WHERE {condition} "
                   f"GROUP BY v ORDER BY n DESC, v LIMIT ?")
        with self._lock:
            return [(v, n) for v, n in self._db.execute(sql, [*params, size]).fetchall()]

    def _nearest(self, target: Record, k: int) -> list[tuple[Record, float]]:
        vec = target.embedding.astype(np.float32)
        model = embedding_model(target.model_id)
        best_ids: list[str] = []
        best_scores = np.empty(0, dtype=np.float32)
        with self._lock:
            # embeddings of another model live in another space (and may have another size)
            cur = self._db.execute(
                "SELECT id, embedding FROM images WHERE embedding IS NOT NULL AND id != ? AND length(embedding) = ? "
                "AND (model_id IS ? OR substr(model_id, 1, length(?) + 1) = ? || '+')",
                [target.id, vec.size * 2, model, model, model])
            while chunk := cur.fetchmany(4096):
                mat = np.frombuffer(b"".join(e for _, e in chunk), dtype=np.float16).reshape(len(chunk), -1)
                scores = np.concatenate([best_scores, mat.astype(np.float32) @ vec])
                ids = best_ids + [i for i, _ in chunk]
                top = np.argsort(-scores, kind="stable")[:k]
                best_ids, best_scores = [ids[t] for t in top], scores[top]
        by_id = self.get_many(best_ids)
        return [(by_id[i], float(s)) for i, s in zip(best_ids, best_scores, strict=True) if i in by_id]

    # -- copies ------------------------------------------------------------------------------------

    def fingerprints(self, embeddings: bool = True, page: int = 1000) -> Iterator[
            tuple[str, str | None, str | None, np.ndarray | None]]:
        columns = "id, content_hash, model_id, embedding" if embeddings else "id, content_hash, NULL, NULL"
        after = ""
        while True:
            with self._lock:  # one page at a time: writers and other readers go between pages
                rows = self._db.execute(f"SELECT {columns} FROM images WHERE id > ? ORDER BY id LIMIT ?",
                                        [after, page]).fetchall()
            for id_, content_hash, model_id, emb in rows:
                yield (id_, content_hash, embedding_model(model_id) if emb is not None else None,
                       None if emb is None else np.frombuffer(emb, dtype=np.float16))
            if len(rows) < page:
                return
            after = rows[-1][0]

    def same_content(self, content_hash: str, limit: int = 100) -> list[Record]:
        return self._fetch_where("content_hash=? ORDER BY id LIMIT ?", [content_hash, limit], embedding=False)
