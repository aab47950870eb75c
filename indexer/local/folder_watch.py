"""`pixdex watch DIR`: a folder kept in step with the catalogue, the embedded default's analogue
of the bucket's event path.

A folder that is gone (moved, deleted, or a drive unmounted from under it, which leaves an empty
mount point on another device) removes nothing: the watcher says so once and waits for it to
come back, so an unplugged disk never empties the catalogue.

It stops cleanly: once `stop` is set (the CLI sets it on SIGINT/SIGTERM) the poll in hand is
finished and nothing is left half-written. A failed poll (the catalogue locked or full) is
logged and retried; what it did not apply is applied by the next one. No AWS module is imported.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from indexer.catalog import Query
from indexer.errors import is_transient
from indexer.ingest.events import Change, ObjectEvent
from indexer.ingest.pipeline import Progress
from indexer.ingest.sync import Sync
from indexer.local.loop import back_off
from indexer.sources.base import SourceItem
from indexer.sources.files import file_uri, find_images, nothing_at, source_item, uri_path

logger = logging.getLogger(__name__)

Signature = tuple[int, int]  # size, mtime in ns


class FolderWatcher:
    """Polls a folder. A new or changed file is indexed once it has looked the same for one poll
    (a file still being written is left until it settles); a removed file is removed."""

    def __init__(self, folder: Path, sync: Sync, interval: float = 1.0) -> None:
        self.folder = folder.resolve()
        self.sync = sync
        self.interval = interval
        self.indexed: dict[Path, Signature] = {}
        self.pending: dict[Path, Signature] = {}
        self.device = self._device()  # the filesystem the folder is on when watching starts
        self.away = False  # the folder was found gone: said once, until it is back
        self.unreadable: set[Path] = set()  # subfolders the last poll could not list (said once)

    def _device(self) -> int | None:
        """The folder's filesystem (st_dev), None when it is no readable folder."""
        try:
            st = self.folder.stat()
        except OSError:
            return None
        return st.st_dev if stat.S_ISDIR(st.st_mode) and os.access(self.folder, os.R_OK | os.X_OK) else None

    def present(self) -> bool:
        """Whether the folder is there, readable and on the filesystem it was on: when it is not, its
        files are not gone, only out of reach, and nothing may be removed."""
        device = self._device()
        if self.device is None:
            self.device = device
        here = device is not None and device == self.device
        if not here and not self.away:
            logger.warning("watched folder %s is gone (moved, deleted or unmounted): its records are kept; "
                           "waiting for it to come back", self.folder)
        elif here and self.away:
            logger.warning("watched folder %s is back", self.folder)
        self.away = not here
        return here

    def run(self, stop: threading.Event, progress: Progress | None = None,
            on_removed: Callable[[str], None] | None = None) -> None:
        on_removed = on_removed or (lambda _: None)
        gone = self._forgotten() if self.present() else []  # files removed while nobody watched
        self.sync.apply(gone, progress=progress)
        for event in gone:
            on_removed(event.uri)
        failures = 0
        while not stop.is_set():
            try:
                events = self.poll(progress)
                failures = 0
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1  # the catalogue locked or full: what was not applied is applied next poll
                logger.warning("folder poll failed (%s); retrying", exc)
                back_off(stop, failures)
                continue
            for event in events:
                if event.change == Change.REMOVED:
                    on_removed(event.uri)
            stop.wait(self.interval)

    def poll(self, progress: Progress | None = None) -> list[ObjectEvent]:
        if not self.present():
            return []
        seen, unlisted = self._scan()
        if not self.present():  # went while it was listed: what the listing missed is not gone
            return []
        # a file under a folder that could not be listed is out of sight, not removed
        gone = {p for p in self.indexed.keys() - seen.keys() if not any(p.is_relative_to(u) for u in unlisted)}
        events = [_removed(file_uri(p)) for p in gone]
        ready = {}
        for path, sig in seen.items():
            if self.indexed.get(path) == sig:
                continue
            if self.pending.get(path) == sig:  # unchanged since the last poll: settled
                ready[path] = sig
            self.pending[path] = sig
        events += [ObjectEvent(Change.CREATED, source_item(p)) for p in ready]
        if events:
            self.sync.apply(events, progress=progress)  # raises: nothing below runs, the next poll retries
        for path in gone:
            del self.indexed[path]
        for path, sig in ready.items():
            self.indexed[path] = sig
            del self.pending[path]
        self.pending = {p: s for p, s in self.pending.items() if p in seen}
        return events

    def _scan(self) -> tuple[dict[Path, Signature], list[Path]]:
        """The images under the folder with their signatures, and the folders that could not be listed."""
        out, unlisted = {}, []

        def cannot_list(folder: Path, exc: OSError) -> None:
            if folder not in self.unreadable:
                logger.warning("cannot read folder %s (%s): its images are neither indexed nor removed",
                               folder, exc.strerror or exc)
            unlisted.append(folder)

        for path in find_images([self.folder], on_error=cannot_list):
            try:
                st = path.stat()
            except OSError:
                continue  # removed while listing: the next poll sees it gone
            out[path] = (st.st_size, st.st_mtime_ns)
        self.unreadable = set(unlisted)
        return out, unlisted

    def _forgotten(self) -> list[ObjectEvent]:
        """Records under the folder whose files are gone."""
        prefix = file_uri(self.folder).rstrip("/") + "/"
        events, cursor = [], None
        while True:
            page = self.sync.catalog.search(Query(source_prefix=prefix, limit=500, cursor=cursor))
            events += [_removed(r.uri) for r in page.records if nothing_at(uri_path(r.uri))]
            cursor = page.next_cursor
            if not cursor:
                return events


def _removed(uri: str) -> ObjectEvent:
    return ObjectEvent(Change.REMOVED, SourceItem(uri=uri))
