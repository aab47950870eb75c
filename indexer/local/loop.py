"""What the long-running loops (the folder and queue watchers) share: how long they wait out a
failure that a later try can pass (indexer.errors.is_transient). Anything else (a bug) ends the
loop instead of being retried for ever."""

from __future__ import annotations

import threading

BACKOFF = (1, 2, 5, 10, 30)  # seconds to wait after 1, 2, ... consecutive failures of a loop


def back_off(stop: threading.Event, failures: int) -> float:
    """Wait after the `failures`-th failure in a row (1-based), or until `stop` is set; returns the wait."""
    seconds = BACKOFF[min(failures, len(BACKOFF)) - 1]
    stop.wait(seconds)
    return seconds
