"""Wires the stages with bounded queues and threads, and times them.

    Lister ─▶ q ─▶ Fetcher ×F ─▶ q ─▶ Decoder ×D ─▶ q ─▶ Labelling (batches) ─▶ q ─▶ Writer

Every queue is bounded, so memory is the same for a hundred keys or a hundred million. Reading
and decoding run in thread pools (botocore and Pillow release the GIL); the model runs in one
thread on batches; the writer thread writes in bulk. `stop` (SIGTERM, SIGINT) ends the listing
and the reads not yet started; what was read is labelled and written before `run` returns. Any
other error ends the run: every thread stops, and the error is raised.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from backfill.report import Progress, Report
from backfill.stages import Decoder, Fetcher, Labelling, Lister, Writer

END = object()  # end of a stream; passes each stage once
IDLE = 0.5  # seconds: a partial model batch, or the writer's buffer, waits no longer for more


class Aborted(Exception):
    """Another thread failed; this one stops."""


class Runner:
    def __init__(self, lister: Lister, fetcher: Fetcher, decoder: Decoder, labelling: Labelling, writer: Writer,
                 report: Report, fetch_workers: int, decode_workers: int, batch_size: int) -> None:
        self.lister, self.fetcher, self.decoder = lister, fetcher, decoder
        self.labelling, self.writer, self.report = labelling, writer, report
        self.fetch_workers, self.decode_workers, self.batch_size = fetch_workers, decode_workers, batch_size
        self.abort = threading.Event()
        self.errors: list[BaseException] = []

    def run(self, progress: Progress | None = None) -> Report:
        to_fetch, to_decode = queue.Queue(4 * self.fetch_workers), queue.Queue(2 * self.decode_workers)
        to_label, to_write = queue.Queue(2 * self.batch_size), queue.Queue(4)
        threads = [self._thread("list", self._feed, self.lister, to_fetch)]
        threads += self._pool("fetch", self.fetcher, self.fetch_workers, to_fetch, to_decode)
        threads += self._pool("decode", self.decoder, self.decode_workers, to_decode, to_label)
        threads += [self._thread("label", self._label, to_label, to_write),
                    self._thread("write", self._write, to_write)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
                if progress:
                    progress.tick()
        self.report.seconds = time.monotonic() - self.report.started
        if self.errors:
            raise self.errors[0]
        return self.report

    # -- threads -------------------------------------------------------------------------------

    def _thread(self, name: str, target: Callable, *args: Any) -> threading.Thread:
        def guarded() -> None:
            try:
                target(*args)
            except Aborted:
                pass
            except BaseException as exc:
                self.errors.append(exc)
                self.abort.set()

        return threading.Thread(target=guarded, name=f"backfill-{name}", daemon=True)

    def _pool(self, name: str, fn: Callable, n: int, inq: queue.Queue, outq: queue.Queue) -> list[threading.Thread]:
        """n workers applying fn; the last one to see END passes it on."""
        alive = [n]
        lock = threading.Lock()

        def work() -> None:
            while (item := self._get(inq)) is not END:
                t = time.perf_counter()
                out = fn(item)
                self.report.timed(name, time.perf_counter() - t)
                if out is not None:
                    self._put(outq, out)
            self._put(inq, END)  # for the siblings
            with lock:
                alive[0] -= 1
                last = alive[0] == 0
            if last:
                self._put(outq, END)

        return [self._thread(f"{name}-{i}", work) for i in range(n)]

    def _feed(self, items: Iterable, outq: queue.Queue) -> None:
        for item in items:
            self._put(outq, item)
        self._put(outq, END)

    def _label(self, inq: queue.Queue, outq: queue.Queue) -> None:
        batch: list = []
        while True:
            item = self._get(inq, IDLE if batch else None)
            if item is not None and item is not END:
                batch.append(item)
            if batch and (item is None or item is END or len(batch) >= self.batch_size):
                t = time.perf_counter()
                labelled = self.labelling(batch)
                self.report.timed("label", time.perf_counter() - t)
                self._put(outq, labelled)
                batch = []
            if item is END:
                self._put(outq, END)
                return

    def _write(self, inq: queue.Queue) -> None:
        try:
            while (item := self._get(inq, IDLE)) is not END:
                if item is None:
                    self.writer.flush()  # idle: make what is labelled durable now
                else:
                    self.writer.add(item)
        except Aborted:
            self.writer.flush()  # another stage failed: keep what is already labelled
            raise
        self.writer.flush()

    # -- queues that give up when another thread failed ------------------------------------------

    def _put(self, q: queue.Queue, item: Any) -> None:
        while True:
            if self.abort.is_set():
                raise Aborted
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                if self.abort.is_set():
                    raise Aborted from None

    def _get(self, q: queue.Queue, timeout: float | None = None) -> Any:
        """The next item; None when `timeout` seconds passed with nothing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.abort.is_set():
                raise Aborted
            try:
                return q.get(timeout=0.2)
            except queue.Empty:
                if self.abort.is_set():
                    raise Aborted from None
                if deadline is not None and time.monotonic() >= deadline:
                    return None
