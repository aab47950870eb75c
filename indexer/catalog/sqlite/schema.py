"""The SQLite catalogue's tables, and opening them: WAL mode, one writer and many readers.

`images` holds one row per record: a column per field of the record (catalog/fields.py), then the
columns only this backend has (IMAGE_COLUMNS). `image_labels` holds one row per label name
(parents included; matched case-insensitively by a NOCASE column) with the confidence of that
label, so label filters and per-label confidence are index scans.

Two tables derived from `image_labels`, in the same transactions that write it, answer the app's
questions at 100k+ images (tests/bench/bench_ui.py): `label_counts`, images per label name (kept
by triggers), and `image_label_codes`, one row per image with its label rows as int32 codes
(label_counts.code) and float64 confidences, which facets count in numpy (facets.py). A catalogue
file written before these tables existed gets them filled when it is opened (derive_missing).
"""

from __future__ import annotations

import sqlite3
import string
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby
from operator import itemgetter
from pathlib import Path

import numpy as np

from indexer.catalog.base import CatalogError
from indexer.catalog.fields import FIELDS
from indexer.errors import CatalogUnavailable

IMAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    *((f.name, f.sqlite) for f in FIELDS),
    ("top_confidence", "REAL NOT NULL DEFAULT -1"),  # the best label's, -1 with none: a filter and a sort key
    ("labels", "TEXT NOT NULL DEFAULT '[]'"),  # JSON (rows.py); queries read image_labels
    ("embedding", "BLOB"),  # float16
    ("faces", "TEXT NOT NULL DEFAULT '[]'"),  # JSON [[x1, y1, x2, y2, score], ...] (rows.py)
)
COLUMNS = tuple(name for name, _ in IMAGE_COLUMNS)
SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
""" + ",\n".join(f"    {name} {decl}" for name, decl in IMAGE_COLUMNS) + """
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
# indexes on columns added since the first version: made once add_missing_columns has added them
LATER_INDEXES = """
CREATE INDEX IF NOT EXISTS images_taken_at ON images (taken_at, id);
CREATE INDEX IF NOT EXISTS images_location ON images (latitude, longitude);
CREATE INDEX IF NOT EXISTS images_content_hash ON images (content_hash) WHERE content_hash IS NOT NULL;
"""
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def marks(n: int) -> str:
    """`?, ?, ?`: placeholders for an IN list of n values. SQL text is assembled from fixed
    fragments and these only; values always travel as parameters."""
    return ", ".join("?" * n)


def nocase(name: str) -> str:
    """What SQLite's NOCASE collation compares: ASCII letters folded, nothing else."""
    return name.translate(_ASCII_LOWER)


def encode_codes(codes: Sequence[int], confidences: Sequence[float]) -> tuple[bytes, bytes]:
    """An image_label_codes row's blobs."""
    return np.asarray(codes, dtype="<i4").tobytes(), np.asarray(confidences, dtype="<f8").tobytes()


def open_db(path: Path) -> sqlite3.Connection:
    """A connection to the catalogue file at `path` (made if missing), its tables made and filled."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA cache_size=-65536")  # KiB: 64 MiB of pages (default 2 MiB)
        db.execute("PRAGMA mmap_size=268435456")  # reads of the first 256 MiB without a copy
        db.executescript(SCHEMA)
        add_missing_columns(db)
        db.executescript(LATER_INDEXES)
    except (OSError, sqlite3.Error) as exc:
        raise CatalogError(f"cannot open the SQLite catalogue {path}: {exc}") from exc
    try:
        derive_missing(db, path)
    except sqlite3.Error as exc:
        db.close()
        raise CatalogError(f"cannot open the SQLite catalogue {path}: {exc}") from exc
    return db


@contextmanager
def transaction(db: sqlite3.Connection, path: Path) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error: writes are all or nothing. A lock held
    past the connection's timeout (another writer) is CatalogUnavailable: retry later."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise CatalogUnavailable(f"the SQLite catalogue {path} is busy: {exc}") from exc
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@contextmanager
def snapshot(db: sqlite3.Connection) -> Iterator[None]:
    """Reads that must see the same data (WAL: one read transaction)."""
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")


def add_missing_columns(db: sqlite3.Connection) -> None:
    """Columns a newer version added to `images` (new fields at the end), added to a file an older
    one made, with their defaults: opening an old catalogue is its migration."""
    have = {row[1] for row in db.execute("PRAGMA table_info(images)")}
    for name, decl in IMAGE_COLUMNS:
        if name not in have:
            try:
                db.execute(f"ALTER TABLE images ADD COLUMN {name} {decl}")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise


def derive_missing(db: sqlite3.Connection, path: Path) -> None:
    """Fill label_counts and image_label_codes for a catalogue written before they existed (or
    images a version without them wrote since): counts recounted, codes kept, rows added."""
    missing = "SELECT (SELECT COUNT(*) FROM images) > (SELECT COUNT(*) FROM image_label_codes)"
    if not db.execute(missing).fetchone()[0]:
        return
    with transaction(db, path):
        if not db.execute(missing).fetchone()[0]:  # another process filled them meanwhile
            return
        db.execute("INSERT INTO label_counts (name, image_count) SELECT name, SUM(confidence >= 0) "
                   "FROM image_labels WHERE true GROUP BY name "
                   "ON CONFLICT (name) DO UPDATE SET image_count = excluded.image_count")
        db.execute("UPDATE label_counts SET image_count = 0 "
                   "WHERE NOT EXISTS (SELECT 1 FROM image_labels l WHERE l.name = label_counts.name)")
        code_of = {nocase(n): c for c, n in db.execute("SELECT code, name FROM label_counts")}
        rows = db.execute(
            "SELECT image_id, name, confidence FROM image_labels l WHERE NOT EXISTS "
            "(SELECT 1 FROM image_label_codes c WHERE c.image_id = l.image_id) ORDER BY image_id")
        out = [(image_id, *encode_codes([code_of[nocase(n)] for _, n, _ in group], [c for *_, c in group]))
               for image_id, group in ((i, list(g)) for i, g in groupby(rows, key=itemgetter(0)))]
        db.executemany("INSERT INTO image_label_codes VALUES (?, ?, ?)", out)
        db.execute("INSERT OR IGNORE INTO image_label_codes SELECT id, x'', x'' FROM images")
