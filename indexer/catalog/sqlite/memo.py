"""Values kept while the catalogue's data is unchanged: totals and facets per query, so a query's
next pages cost only their page, and the label rows facets count in memory."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
MEMO_SIZE = 256  # values kept, the least recently used dropped first


class Memo:
    """Values by key for one connection, dropped once the data changes: other connections' commits
    (PRAGMA data_version), and rows this connection changed (total_changes)."""

    def __init__(self, db: sqlite3.Connection, size: int = MEMO_SIZE) -> None:
        self._db = db
        self._size = size
        self._version: tuple[int, int] | None = None
        self._values: OrderedDict[tuple, object] = OrderedDict()

    def get(self, key: tuple, compute: Callable[[], T]) -> T:
        """compute(), or its value from an earlier call while the data is unchanged."""
        if self.has(key):
            self._values.move_to_end(key)
        else:
            self._values[key] = compute()
            if len(self._values) > self._size:
                self._values.popitem(last=False)
        return self._values[key]

    def has(self, key: tuple) -> bool:
        version = (self._db.execute("PRAGMA data_version").fetchone()[0], self._db.total_changes)
        if version != self._version:
            self._values.clear()
            self._version = version
        return key in self._values
