"""Query planning: which rows a query's matching images are found from, their filters as SQL, and
the SQL of their count and of one page of them in sort order (keyset pagination).

A query with all_of labels starts from the label rows of its rarest one (fewest images in
label_counts), the others joined by primary key; any other from `images`. Label filters are probes
of image_labels (EXISTS), the rest filters on the images row.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from indexer.catalog.base import Cursor, Query, Sort, utc_iso
from indexer.catalog.geo import circle_box
from indexer.catalog.sqlite.label_counts import LabelCounts
from indexer.catalog.sqlite.memo import Memo
from indexer.catalog.sqlite.schema import marks, nocase
from indexer.record import Status

DRIVE_COST = 3  # one label row started from (lookup + sort) against one images row walked in date order


@dataclass
class Plan:
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


def matching(query: Query) -> Query:
    """The part of a query that decides which images match (not their order or page): the key of
    its total and facets."""
    return replace(query, sort=Sort.DATE, limit=1, cursor=None)


def word_prefix(column: str, text: str) -> tuple[str, list[str]]:
    """`column` has a word starting with `text` (LIKE, with the text's own wildcards escaped)."""
    t = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"({column} LIKE ? ESCAPE '\\' OR {column} LIKE ? ESCAPE '\\')", [f"{t}%", f"% {t}%"]


def where(q: Query) -> tuple[str, list]:
    """The query's filters on `images i`, as one condition."""
    clauses, params, _ = conditions(q, "i.id")
    return " AND ".join(["1=1", *clauses]), params


def conditions(q: Query, ids: str, all_of: bool = True) -> tuple[list[str], list, bool]:
    """The query's filters on the image whose id is `ids` (labels as probes of image_labels;
    those of all_of unless the plan joins them), and whether one reads the images row."""
    clauses, params = _label_conditions(q, ids, all_of)
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
    for column, since, until in (("indexed_at", q.since, q.until), ("taken_at", q.taken_since, q.taken_until)):
        for op, at in ((">=", since), ("<", until)):
            if at is not None:
                clauses.append(f"i.{column} {op} ?")  # a fixed name and operator, never the caller's text
                params.append(utc_iso(at))
    if q.camera:
        clauses.append("i.camera = ?")  # the column's NOCASE collation: any case
        params.append(q.camera)
    if q.has_location is not None:
        clauses.append("i.latitude IS NOT NULL" if q.has_location else "i.latitude IS NULL")
    if q.has_date is not None:
        clauses.append("i.taken_at IS NOT NULL" if q.has_date else "i.taken_at IS NULL")
    if q.within is not None:
        clause, box_params = inside(q.within)
        clauses.append(clause)
        params += box_params
    if q.near is not None:  # the circle's box (an index range), then the exact distance of what is in it
        lat, lon, radius = q.near
        clause, box_params = inside(circle_box(lat, lon, radius))
        clauses.append(f"{clause} AND {DISTANCE}(i.latitude, i.longitude, ?, ?) <= ?")
        params += [*box_params, lat, lon, radius]
    return clauses, params, len(clauses) > labels


DISTANCE = "pixdex_distance_km"  # geo.distance_km, registered on the connection (SQLiteCatalog)


def inside(box: tuple[float, float, float, float]) -> tuple[str, list]:
    """The position is in the box (south, west, north, east), edges included; west > east: the box
    crosses the antimeridian, so the longitude is east of west or west of east."""
    south, west, north, east = box
    lon = "i.longitude BETWEEN ? AND ?" if west <= east else "(i.longitude >= ? OR i.longitude <= ?)"
    return f"i.latitude BETWEEN ? AND ? AND {lon}", [south, north, west, east]


def _label_conditions(q: Query, ids: str, all_of: bool) -> tuple[list[str], list]:
    """The label filters of `conditions`: each a probe of the image's label rows."""
    clauses, params = [], []
    has = f"EXISTS (SELECT 1 FROM image_labels l2 WHERE l2.image_id = {ids} AND l2.confidence >= ? AND "
    for name in q.all_of if all_of else ():
        clauses.append(has + "l2.name = ?)")
        params += [q.min_confidence, name]
    if q.any_of:
        clauses.append(has + f"l2.name IN ({marks(len(q.any_of))}))")
        params += [q.min_confidence, *q.any_of]
    if q.none_of:
        clauses.append("NOT " + has + f"l2.name IN ({marks(len(q.none_of))}))")
        params += [q.min_confidence, *q.none_of]
    if q.text:
        like, like_params = word_prefix("l2.name", q.text)
        clauses.append(has + like + ")")
        params += [q.min_confidence, *like_params]
    return clauses, params


def score(q: Query, ids: str) -> tuple[str, list]:
    """The confidence of the matched label (best of them), or the best label with no label query."""
    names = q.matched_labels
    if not names and not q.text:
        return "i.top_confidence", []
    conds, params = [], []
    if names:
        conds.append(f"l3.name IN ({marks(len(names))})")
        params += list(names)
    if q.text:
        like, like_params = word_prefix("l3.name", q.text)
        conds.append(like)
        params += like_params
    sql = (f"COALESCE((SELECT MAX(l3.confidence) FROM image_labels l3 WHERE l3.image_id = {ids} "
           f"AND ({' OR '.join(conds)})), -1)")
    return sql, params


def keyset(value: str, id_: str, cursor: Cursor | None) -> tuple[str, list]:
    """After the cursor in (value DESC, id DESC) order: a row value, which an index on (value, id)
    seeks to."""
    if cursor is None:
        return "", []
    return f"AND ({value}, {id_}) < (?, ?)", [cursor.value, cursor.id]


class Planner:
    """Plans a query on one connection, and reads its total and its pages."""

    def __init__(self, db: sqlite3.Connection, memo: Memo, labels: LabelCounts) -> None:
        self._db = db
        self._memo = memo
        self._labels = labels

    def plan(self, q: Query, images: bool = False, drive: bool = True) -> Plan:
        """Start from the rarest all_of label's rows (fewest images per label_counts) when the query
        has one and `drive`, else from images. `images`: the images row is needed (i.indexed_at)."""
        if not (q.all_of and drive):
            clauses, params, _ = conditions(q, "i.id")
            return Plan("images i", clauses, params, "i.id")
        counts = self._labels.images(q.all_of)
        names = sorted(q.all_of, key=lambda n: counts.get(nocase(n), 0))
        clauses, params, on_images = conditions(q, "d.image_id", all_of=False)
        source, joined = "image_labels d", []
        for k, name in enumerate(names[1:]):  # CROSS JOIN: in this order, each a primary key lookup
            source += f" CROSS JOIN image_labels e{k} ON e{k}.image_id = d.image_id AND e{k}.name = ? " \
                      f"AND e{k}.confidence >= ?"
            joined += [name, q.min_confidence]
        if images or on_images:
            source += " CROSS JOIN images i ON i.id = d.image_id"
        best = None
        if not (q.any_of or q.text):  # the best of the all_of labels' confidences (one-argument max aggregates)
            best = f"max(d.confidence, {', '.join(f'e{k}.confidence' for k in range(len(names) - 1))})" \
                if len(names) > 1 else "d.confidence"
        return Plan(source, ["d.name = ?", "d.confidence >= ?", *clauses],
                    [*joined, names[0], q.min_confidence, *params], "d.image_id", names[0], best)

    def total(self, q: Query) -> int:
        """Images matching the query, kept while the data is unchanged."""
        return self._memo.get(("total", matching(q)), lambda: self._count(q))

    def _count(self, q: Query) -> int:
        plan = self.plan(q)
        return self._db.execute(f"SELECT COUNT(*) FROM {plan.source} WHERE {plan.where}", plan.params).fetchone()[0]

    def image_count(self) -> int:
        """Images in the catalogue, kept while the data is unchanged."""
        return self._memo.get(("images",), lambda: self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0])

    def page(self, q: Query, cursor: Cursor | None, total: int) -> list[tuple[str, str | float]]:
        """(id, sort value) of the page after `cursor`, one more than the limit if there is more."""
        if q.sort == Sort.CONFIDENCE:
            return self._confidence_page(q, cursor)
        if q.sort == Sort.TAKEN:
            return self._taken_page(q, cursor, total)
        return self._date_page(q, cursor, total)

    def _confidence_page(self, q: Query, cursor: Cursor | None) -> list[tuple[str, float]]:
        """Confidence of a single label: that label's index rows, read downwards from the cursor;
        else each matching image's score, sorted."""
        plan = self.plan(q)
        if plan.score == "d.confidence":  # one label: its index rows are in page order
            after, after_params = keyset("d.confidence", "d.image_id", cursor)
            sql = (f"SELECT d.image_id, d.confidence FROM {plan.source} WHERE {plan.where} {after} "
                   f"ORDER BY d.confidence DESC, d.image_id DESC LIMIT ?")
            return self._db.execute(sql, [*plan.params, *after_params, q.limit + 1]).fetchall()
        value, value_params = (plan.score, []) if plan.score else score(q, plan.ids)
        after, after_params = keyset("score", "id", cursor)
        sql = (f"SELECT id, score FROM (SELECT {plan.ids} AS id, {value} AS score FROM {plan.source} "
               f"WHERE {plan.where}) WHERE 1=1 {after} ORDER BY score DESC, id DESC LIMIT ?")
        return self._db.execute(sql, [*value_params, *plan.params, *after_params, q.limit + 1]).fetchall()

    def _date_page(self, q: Query, cursor: Cursor | None, total: int) -> list[tuple[str, str]]:
        """The images in date order from the cursor."""
        plan = self._walk(q, total)
        after, after_params = keyset("i.indexed_at", "i.id", cursor)
        sql = (f"SELECT i.id, i.indexed_at FROM {plan.source} WHERE {plan.where} {after} "
               f"ORDER BY i.indexed_at DESC, i.id DESC LIMIT ?")
        return self._db.execute(sql, [*plan.params, *after_params, q.limit + 1]).fetchall()

    def _taken_page(self, q: Query, cursor: Cursor | None, total: int) -> list[tuple[str, str | None]]:
        """The images in order of date taken from the cursor: those with a date (index images_taken_at
        from the cursor's row value down), then, when the page is not full, those without, by id
        (the same index's NULL entries). A cursor with no value is among the undated already."""
        plan = self._walk(q, total)
        rows: list[tuple[str, str | None]] = []
        if cursor is None or cursor.value is not None:
            after, after_params = keyset("i.taken_at", "i.id", cursor)
            sql = (f"SELECT i.id, i.taken_at FROM {plan.source} WHERE {plan.where} AND i.taken_at IS NOT NULL "
                   f"{after} ORDER BY i.taken_at DESC, i.id DESC LIMIT ?")
            rows = self._db.execute(sql, [*plan.params, *after_params, q.limit + 1]).fetchall()
        if len(rows) <= q.limit:
            after, after_params = ("AND i.id < ?", [cursor.id]) if cursor and cursor.value is None else ("", [])
            sql = (f"SELECT i.id, NULL FROM {plan.source} WHERE {plan.where} AND i.taken_at IS NULL {after} "
                   f"ORDER BY i.id DESC LIMIT ?")
            rows += self._db.execute(sql, [*plan.params, *after_params, q.limit + 1 - len(rows)]).fetchall()
        return rows

    def _walk(self, q: Query, total: int) -> Plan:
        """The plan of a page read in the order of a column of images (a date): checking each image
        from the cursor on (the label filters are probes), unless the query's rarest label has so
        few images that sorting them all costs less than walking past the non-matching ones."""
        plan = self.plan(q, images=True)
        if plan.driver is not None:
            walk = (q.limit + 1) * self.image_count() / total  # rows read in date order
            if self._labels.images([plan.driver]).get(nocase(plan.driver), 0) * DRIVE_COST > walk:
                plan = self.plan(q, drive=False)
        return plan
