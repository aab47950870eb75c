"""Lookups in `label_counts`: a label name's code (image_label_codes) and back, and its images."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from indexer.catalog.base import chunks
from indexer.catalog.sqlite.schema import marks, nocase


class LabelCounts:
    """label_counts read through one connection. Codes and names are cached: codes are never
    reused, so a cached one stays right."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._code_of: dict[str, int] = {}  # nocase(name) -> label_counts.code, committed ones only
        self._name_of: dict[int, str] = {}

    def codes(self, names: Iterable[str]) -> dict[str, int]:
        """label_counts.code per nocase(name); names never seen are absent. In the writing
        transaction, call it after image_labels, whose trigger adds new names, and pass what it
        returns to `committed` once the transaction is."""
        out, missing = {}, []
        for name in names:
            key = nocase(name)
            if key in self._code_of:
                out[key] = self._code_of[key]
            else:
                missing.append(name)
        for chunk in chunks(missing):
            for code, name in self._db.execute(
                    f"SELECT code, name FROM label_counts WHERE name IN ({marks(len(chunk))})", chunk):
                out[nocase(name)] = code
        return out

    def committed(self, code_of: dict[str, int]) -> None:
        """Cache codes `codes` returned in a transaction now committed: these codes are for good."""
        self._code_of.update(code_of)

    def names(self, codes: list[int]) -> list[str]:
        """The label name of each code."""
        missing = [c for c in codes if c not in self._name_of]
        for chunk in chunks(missing):
            self._name_of.update(self._db.execute(
                f"SELECT code, name FROM label_counts WHERE code IN ({marks(len(chunk))})", chunk).fetchall())
        return [self._name_of[c] for c in codes]

    def images(self, names: Sequence[str]) -> dict[str, int]:
        """label_counts.image_count per nocase(name); names never seen are absent."""
        rows = self._db.execute(f"SELECT name, image_count FROM label_counts WHERE name IN ({marks(len(names))})",
                                list(names)).fetchall()
        return {nocase(n): c for n, c in rows}
