"""Facets: images per label among those a query matches, counted from label_counts (no filter), or
in numpy from `image_label_codes`, the label rows of each image as codes and confidences, instead
of grouping ~15 label rows per image in SQL: from the matching images' rows, or, for queries of
labels and a confidence only, from every image's rows held in memory while the data is unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from indexer.catalog.base import Query
from indexer.catalog.sqlite.label_counts import LabelCounts
from indexer.catalog.sqlite.memo import Memo
from indexer.catalog.sqlite.planning import Planner, conditions, matching
from indexer.catalog.sqlite.schema import nocase, snapshot

COMPLEMENT = 0.75  # facets of a query most images match (at confidence 0) count the rest, from label_counts
IN_MEMORY = 4  # facets: load every image's labels (1 per image) rather than read 1 in 4 of them from SQL


class Facets:
    """The facets of queries on one connection, kept while the data is unchanged."""

    def __init__(self, db: sqlite3.Connection, memo: Memo, labels: LabelCounts, planner: Planner) -> None:
        self._db = db
        self._memo = memo
        self._labels = labels
        self._planner = planner

    def of(self, q: Query, size: int) -> list[tuple[str, int]]:
        """The `size` labels most matching images carry (at >= min_confidence), with how many."""
        return list(self._memo.get(("facets", matching(q), size), lambda: self._count(q, size)))

    def _count(self, q: Query, size: int) -> list[tuple[str, int]]:
        if matching(q) == matching(Query()):  # no filter: every image, every label
            return self._db.execute("SELECT name, image_count FROM label_counts WHERE image_count > 0 "
                                    "ORDER BY image_count DESC, name LIMIT ?", [size]).fetchall()
        counts = self._counts_in_memory(q) if self._in_memory_pays(q) else self._counts_in_sql(q)
        found = np.flatnonzero(counts)
        names = self._labels.names(found.tolist())
        ranked = sorted(zip(names, counts[found].tolist(), strict=True), key=lambda nc: (-nc[1], nocase(nc[0])))
        return ranked[:size]

    def _in_memory_pays(self, q: Query) -> bool:
        """Whether to count a query's facets from every image's labels in memory: it has label
        filters and a confidence only (the app's searches), and they are in memory already or
        reading its rarest label's images from SQL would take longer than loading them all."""
        if matching(Query()) != matching(replace(q, all_of=(), any_of=(), none_of=(), min_confidence=0.0)):
            return False
        if not (q.all_of or q.any_of) and q.min_confidence > 0:  # the best label, properties left out: SQL knows it
            return False
        if not q.all_of or self._memo.has(("labels",)):
            return True
        rarest = min(self._labels.images(q.all_of).get(nocase(n), 0) for n in q.all_of)
        return rarest * len(q.all_of) * IN_MEMORY > self._planner.image_count()

    def _counts_in_memory(self, q: Query) -> np.ndarray:
        """Images per label code among those matching a query of label filters only, from every
        image's label rows held in memory while the data is unchanged."""
        image, codes, confidences, images = self._memo.get(("labels",), self._labels_in_memory)
        confident = confidences >= q.min_confidence
        code_of = self._labels.codes([*q.all_of, *q.any_of, *q.none_of])  # unknown names are absent

        def having(names: Sequence[str]) -> np.ndarray:
            wanted = list({code_of[k] for k in map(nocase, names) if k in code_of})
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

    def _counts_in_sql(self, q: Query) -> np.ndarray:
        """Images per label code among those matching any query: the label codes of each matching
        image, or, when most images match (at confidence 0), of each other image, subtracted from
        label_counts."""
        with snapshot(self._db):
            total = self._planner.total(q)  # search has asked already
            most = q.min_confidence == 0 and total > COMPLEMENT * self._planner.image_count()
            if most:
                clauses, params, on_images = conditions(q, "c.image_id")
                source = "image_label_codes c" + (" CROSS JOIN images i ON i.id = c.image_id" if on_images else "")
                rows = self._db.execute(f"SELECT c.codes, c.confidences FROM {source} "
                                        f"WHERE NOT ({' AND '.join(clauses) or '1=1'})", params).fetchall()
                every = self._db.execute("SELECT code, image_count FROM label_counts").fetchall()
            else:
                plan = self._planner.plan(q)
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
