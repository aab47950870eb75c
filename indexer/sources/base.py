"""What every source (a folder, a bucket) hands the pipeline, and how reading can fail.

Three ways to fail, because each asks for a different reaction:
- `ImageError` (indexer.images): the bytes are what they are (empty, too large). A FAILED record.
- `ReadError`: the bytes could not be read now (permission denied). A FAILED record, read again
  on the next run; `ObjectMissing` when the object is gone (deleted since it was listed).
- `SourceUnavailable`: the store itself failed (S3 5xx after retries, no connection). Nothing is
  written; the caller retries the item (an SQS message goes back to the queue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from indexer.errors import SourceError


class ReadError(SourceError):
    """The bytes could not be read (vanished, permission denied). The item gets a FAILED record
    saying so and is retried on the next run, unlike an image that fails to decode. `reason` names
    the kind in a few words (reports count failures by it)."""

    def __init__(self, message: str, reason: str = "read error") -> None:
        super().__init__(message)
        self.reason = reason


class ObjectMissing(ReadError):
    """The object no longer exists: event-driven callers remove it from the catalogue."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "deleted since listed")


class SourceUnavailable(SourceError):
    """A transient failure of the store (5xx, throttling, connection). Retry the item later."""

    http_status = 503
    transient = True


@dataclass(frozen=True)
class SourceItem:
    """Where an image's bytes are, and what the source says about them before reading."""

    uri: str
    size: int | None = None
    last_modified: datetime | None = None
    bucket: str | None = None
    key: str | None = None
    version_id: str | None = None
    etag: str | None = None
    sequencer: str | None = None  # normalised S3 event sequencer; None outside event-driven paths


@dataclass(frozen=True)
class Fetched:
    """The bytes, with the item as the store described it when they were read (the version,
    etag and size read can be newer than the event or listing that named the item)."""

    item: SourceItem
    data: bytes


class Source(Protocol):
    def read(self, item: SourceItem) -> Fetched:
        """The item's current bytes; raises ImageError, ReadError or SourceUnavailable."""

    def head(self, uri: str) -> SourceItem | None:
        """What is at `uri` now, or None when nothing is; raises SourceUnavailable, or ReadError
        when the store will not say."""
