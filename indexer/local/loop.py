"""What the long-running loops (the folder and queue watchers) share: which failures they wait
out, and for how long. Anything else (a bug) ends the loop instead of being retried for ever."""

from __future__ import annotations

import sqlite3
import threading

from indexer.errors import is_transient

BACKOFF = (1, 2, 5, 10, 30)  # seconds to wait after 1, 2, ... consecutive failures of a loop
# a disk full or a connection refused, a SQLite file locked past its timeout: the next try may pass
OUTAGES: tuple[type[BaseException], ...] = (OSError, sqlite3.OperationalError)


def is_outage(exc: BaseException, also: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether a loop waits `exc` out: a transient pixdex error, an OUTAGES one, or one of `also`."""
    return is_transient(exc) or isinstance(exc, OUTAGES + also)


def back_off(stop: threading.Event, failures: int) -> float:
    """Wait after the `failures`-th failure in a row (1-based), or until `stop` is set; returns the wait."""
    seconds = BACKOFF[min(failures, len(BACKOFF)) - 1]
    stop.wait(seconds)
    return seconds
