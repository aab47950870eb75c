"""Reading by URI: `file://` from disk, `s3://` from S3 (one client, made on first use). For
callers that meet both kinds: a list of URIs, the app showing whatever the catalogue holds."""

from __future__ import annotations

from indexer.settings import Settings
from indexer.sources.base import Fetched, SourceItem
from indexer.sources.files import FileSource
from indexer.sources.s3 import S3Source, make_client


class UriSource:
    """A Source for any catalogue URI; `threads`: how many threads share the S3 client."""

    def __init__(self, settings: Settings, threads: int = 16) -> None:
        self.settings, self.threads = settings, threads
        self.files = FileSource(settings.limits)
        self._s3: S3Source | None = None

    @property
    def s3(self) -> S3Source:
        if self._s3 is None:
            self._s3 = S3Source(self.settings, make_client(self.settings, threads=self.threads))
        return self._s3

    def read(self, item: SourceItem) -> Fetched:
        return self.s3.read(item) if item.uri.startswith("s3://") else self.files.read(item)

    def head(self, uri: str) -> SourceItem | None:
        return self.s3.head(uri) if uri.startswith("s3://") else self.files.head(uri)
