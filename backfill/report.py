"""What a backfill did: counts, failures by reason, throughput and per-stage time, live and at the end."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from indexer.cli.common import json_text

EXAMPLES = 5  # failures kept per reason, with their URIs, for a person to look at


@dataclass
class Report:
    """Counters updated by every stage (thread-safe through `add`)."""

    source: str
    shard: str = "1/1"
    dry_run: bool = False
    model_id: str | None = None
    total: int | None = None  # what the progress bar counts to: entries listed, or --limit images
    limited: bool = False  # --limit: progress counts images attempted, not entries listed
    listed: int = 0  # entries of this shard, skipped ones included
    other_shards: int = 0  # entries left to the other shards
    todo: int = 0  # passed the skip check: labelled, failed, removed, deferred or left
    labelled: int = 0
    failed: int = 0  # FAILED records written (corrupt image, access denied...), and unreadable entries (not UTF-8)
    removed: int = 0  # deleted since listed: not written, their old records removed
    deferred: int = 0  # the store failed after retries: nothing written, the next run takes them
    left: int = 0  # not started because the run was stopped: the next run takes them
    retries: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    failures: Counter = field(default_factory=Counter)  # reason -> count (failed, removed, deferred)
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # reason -> first failures
    skip_examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> first URIs skipped
    stage_seconds: Counter = field(default_factory=Counter)  # busy time, summed over a stage's workers
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    stopped_by: str | None = None  # SIGTERM, SIGINT: stopped early, cleanly
    error: str | None = None  # what ended the run early (the catalogue refused writes...)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def skip(self, reason: str, uri: str) -> None:
        with self._lock:
            self.skipped[reason] += 1
            kept = self.skip_examples.setdefault(reason, [])
            if len(kept) < EXAMPLES:
                kept.append(uri)

    def fail(self, uri: str, reason: str, error: str) -> None:
        with self._lock:
            self.failures[reason] += 1
            kept = self.examples.setdefault(reason, [])
            if len(kept) < EXAMPLES:
                kept.append({"uri": uri, "error": error})

    def timed(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.stage_seconds[stage] += seconds

    @property
    def done(self) -> int:
        """Entries finished one way or another: what a progress bar counts."""
        finished = self.labelled + self.failed + self.removed + self.deferred + self.left
        attempted = self.todo + self.failed if self.dry_run else finished  # a dry run fails only unreadable entries
        return attempted if self.limited else attempted + sum(self.skipped.values())

    @property
    def elapsed(self) -> float:
        return self.seconds or time.monotonic() - self.started

    @property
    def images_per_second(self) -> float:
        return (self.labelled + self.failed) / self.elapsed if self.elapsed else 0.0

    @property
    def failure_rate(self) -> float:
        """Failed and deferred items over those attempted. Objects deleted since they were listed
        are not failures (an inventory is up to a day old; lifecycle rules expire objects)."""
        attempted = (self.todo if self.dry_run else self.labelled + self.deferred) + self.failed
        return (self.failed + self.deferred) / attempted if attempted else 0.0

    def line(self) -> str:
        """One log line: for Batch logs (no TTY) and the end of a run."""
        return (f"{self.done} done: labelled {self.labelled}, skipped {sum(self.skipped.values())}, failed "
                f"{self.failed + self.removed + self.deferred} ({self.images_per_second:.1f} images/s, "
                f"{self.elapsed:.0f}s)")

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "source": self.source, "shard": self.shard, "dry_run": self.dry_run, "model_id": self.model_id,
                "listed": self.listed, "other_shards": self.other_shards, "todo": self.todo,
                "labelled": self.labelled, "failed": self.failed, "removed": self.removed,
                "deferred": self.deferred, "left": self.left, "retries": self.retries,
                "skipped": dict(self.skipped.most_common()), "skip_examples": self.skip_examples,
                "failures": dict(self.failures.most_common()),
                "failure_rate": round(self.failure_rate, 4), "examples": self.examples,
                "seconds": round(self.elapsed, 3), "images_per_second": round(self.images_per_second, 2),
                "stage_seconds": {k: round(v, 3) for k, v in sorted(self.stage_seconds.items())},
                "stopped_by": self.stopped_by, "error": self.error,
            }

    def to_json(self) -> str:
        return json_text(self.as_dict()) + "\n"  # S3 keys quoted in it cannot drive the terminal


class Progress:
    """A live bar on a terminal (images/s, counts, ETA when the total is known); on anything else
    (AWS Batch logs, CI), one `line()` every `interval` seconds."""

    def __init__(self, report: Report, interval: float = 30.0, stream: TextIO = sys.stderr) -> None:
        self.report, self.interval, self.stream = report, interval, stream
        self.bar = None
        self._last_line = time.monotonic()
        if stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=report.total, unit="img", desc="backfill", dynamic_ncols=True, file=stream)

    def tick(self) -> None:
        r = self.report
        if self.bar is not None:
            self.bar.n = r.done
            self.bar.set_postfix_str(f"labelled {r.labelled} skipped {sum(r.skipped.values())} failed "
                                     f"{r.failed + r.removed + r.deferred}", refresh=False)
            self.bar.refresh()
        elif time.monotonic() - self._last_line >= self.interval:
            self._last_line = time.monotonic()
            print(f"pixdex backfill: {r.line()}", file=self.stream, flush=True)

    def close(self) -> None:
        self.tick()
        if self.bar is not None:
            self.bar.close()
