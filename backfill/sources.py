"""What to backfill: SOURCE as given on the command line, streamed as items, with skip reasons.

SOURCE is `s3://bucket/prefix` (a ListObjectsV2 listing), the `s3://.../manifest.json` of an S3
Inventory report, a local folder, or a text file of URIs (s3://, file:// or absolute paths), one
per line. No listing is ever held whole in memory (a URI file keeps a 16-byte digest of each URI
it has given, to give each once).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from backfill.inventory import Inventory
from backfill.shard import Shard
from indexer.errors import UsageError
from indexer.images import EXTENSIONS
from indexer.sources.base import ObjectMissing, ReadError, SourceItem
from indexer.sources.files import file_uri, source_item, uri_path
from indexer.sources.s3 import S3Source, split_s3_uri, translate_errors
from indexer.sources.uris import UriSource


class NotASource(UsageError):
    """SOURCE is not something the backfill can list; the message names it and says why."""


@dataclass(frozen=True)
class Skipped:
    """An entry of the listing that is not an image to label, and why."""

    uri: str
    reason: str


@dataclass(frozen=True)
class Unreadable:
    """An entry that names no image the backfill can read (a line that is not UTF-8, a symlink
    loop): a failure of that entry. No record is written, as there is no canonical URI to give it."""

    uri: str  # how the summary names it: "line 4: /photos/a.jpg", or the path as found
    reason: str
    error: str


Listed = SourceItem | Skipped | Unreadable


class Listing:
    """A source's entries in order. `total` is known up front for folders and URI files only.
    `sharded`: the listing already kept to its shard (inventory data files by position)."""

    description: str
    total: int | None = None
    sharded: bool = False

    def items(self) -> Iterator[Listed]:
        raise NotImplementedError


class BucketListing(Listing):
    def __init__(self, s3: S3Source, bucket: str, prefix: str) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.description = f"s3://{bucket}/{prefix} (bucket listing)"

    def items(self) -> Iterator[Listed]:
        yield from self.s3.list(self.bucket, self.prefix)


class InventoryListing(Listing):
    """An inventory's data files split between shards by position when there are at least as many
    files as shards (each child then downloads only its own files); else every child reads every
    file and keeps its keys by hash."""

    def __init__(self, client: Any, manifest_uri: str, shard: Shard) -> None:
        self.inventory = Inventory(client, manifest_uri)
        m = self.inventory.manifest
        self.shard = shard
        self.sharded = not shard.whole and len(m.files) >= shard.count
        self.description = (f"{manifest_uri} (S3 Inventory of s3://{m.source_bucket}, {len(m.files)} "
                            f"{m.file_format} file{'s' if len(m.files) != 1 else ''})")

    def items(self) -> Iterator[Listed]:
        files = range(len(self.inventory.manifest.files))
        mine = (i for i in files if self.shard.owns_file(i)) if self.sharded else iter(files)
        for row in self.inventory.rows(mine):
            yield Skipped(row.item.uri, row.skip) if row.skip else row.item


class FolderListing(Listing):
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"{folder} (folder)"
        self.total = sum(1 for _ in self._walk())  # names only, no stat: cheap next to labelling

    def items(self) -> Iterator[Listed]:
        for path, skip in self._walk():
            try:
                entry = Skipped(file_uri(path) + ("/" if skip == "hidden folder" else ""), skip) if skip else \
                    source_item(path)
            except ReadError as exc:  # a symlink loop
                entry = Unreadable(path.as_uri(), exc.reason, str(exc))
            yield entry

    def _walk(self) -> Iterator[tuple[Path, str | None]]:
        """Every entry in order, with why it is skipped (hidden ones are counted, not walked)."""
        for root, dirs, files in os.walk(self.folder):
            dirs.sort()
            for d in [d for d in dirs if d.startswith(".")]:
                dirs.remove(d)
                yield Path(root, d), "hidden folder"
            for name in sorted(files):
                yield Path(root, name), "hidden file" if name.startswith(".") else None


class UriFileListing(Listing):
    """Lines: s3://bucket/key, file:///abs/path or /abs/path; blank lines and # comments are ignored.
    A line that names no readable image (not UTF-8, a file URI of another host, a symlink loop) is
    a failure of that line; a line naming an image an earlier line named is skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"{path} (list of URIs)"
        self.total = sum(1 for _, text, _ in self._lines() if text and not text.startswith("#"))

    def items(self) -> Iterator[Listed]:
        first: dict[bytes, int] = {}  # digest of each URI given -> its line
        for number, text, not_utf8 in self._lines():
            if not text or text.startswith("#"):
                continue
            where = f"line {number}: {text}"
            entry = Unreadable(where, "not UTF-8", not_utf8) if not_utf8 else self._entry(where, text)
            if isinstance(entry, SourceItem):
                digest = hashlib.blake2b(entry.uri.encode(), digest_size=16).digest()
                if digest in first:
                    entry = Skipped(f"{where} (as line {first[digest]})", "repeats an earlier line")
                else:
                    first[digest] = number
            yield entry

    def _lines(self) -> Iterator[tuple[int, str, str | None]]:
        """(number, stripped text, why it is not UTF-8 or None); such a line's text has its bytes
        escaped (\\xff), for the summary to name it."""
        with self.path.open("rb") as f:
            for number, line in enumerate(f, 1):
                try:
                    text, not_utf8 = line.decode(), None
                except UnicodeDecodeError as exc:
                    text = line.decode(errors="backslashreplace")
                    not_utf8 = f"byte {line[exc.start]:#04x} at position {exc.start + 1} of the line: {exc.reason}"
                yield number, text.strip(), not_utf8

    @staticmethod
    def _entry(where: str, text: str) -> Listed:
        if text.startswith("s3://"):
            try:
                bucket, key = split_s3_uri(text)
            except ValueError:
                bucket = key = ""
            return SourceItem(uri=text, bucket=bucket, key=key) if key else \
                Skipped(where, "not an s3://bucket/key URI")
        if not text.startswith(("file://", "/")):
            return Skipped(where, "not an s3://, file:// URI or absolute path")
        if not text.startswith("file://"):
            path = Path(text)
        else:
            try:
                host, path = urlparse(text).netloc, uri_path(text)
            except ValueError:  # file://[... : not a URI at all
                return Skipped(where, "not a file:///path URI")
            if host.lower() not in ("", "localhost"):
                return Unreadable(where, "file URI of another host",
                                  f"{host!r} is another machine: only local files can be read (file:///path)")
        if "\0" in str(path):
            return Unreadable(where, "not a path", "a NUL byte in the path")
        try:
            return source_item(path)
        except ReadError as exc:  # a symlink loop
            return Unreadable(where, exc.reason, str(exc))


def open_listing(spec: str, reader: UriSource, shard: Shard) -> Listing:
    """SOURCE as typed -> its listing; raises NotASource naming SOURCE when it is none of the kinds."""
    if spec.startswith("s3://"):
        try:
            bucket, key = split_s3_uri(spec)
        except ValueError:
            raise NotASource(f"SOURCE {spec!r}: expected s3://bucket/prefix or s3://.../manifest.json") from None
        if key.endswith("manifest.json"):
            try:
                return InventoryListing(reader.s3.client, spec, shard)
            except ObjectMissing:
                raise NotASource(f"SOURCE {spec}: no such manifest") from None
            except ReadError as exc:
                raise NotASource(f"SOURCE {spec}: {exc}") from None
        _probe(reader.s3.client, bucket, key, spec)
        return BucketListing(reader.s3, bucket, key)
    if "://" in spec and not spec.startswith("file://"):
        raise NotASource(f"SOURCE {spec!r}: expected s3://bucket/prefix, s3://.../manifest.json, a folder or a "
                          f"file of URIs")
    path = Path(spec.removeprefix("file://")).expanduser()
    if path.is_dir():
        return FolderListing(path.resolve())
    if path.is_file():
        if path.suffix.lower() in EXTENSIONS:
            raise NotASource(f"SOURCE {spec!r} is an image: give its folder, or use `pixdex index`")
        return UriFileListing(path)
    raise NotASource(f"SOURCE {spec!r}: no such folder or file")


def _probe(client: Any, bucket: str, prefix: str, spec: str) -> None:
    """One cheap request, so a wrong bucket or a missing permission is a bad SOURCE (exit 2) named
    before the model loads, not an error an hour into the listing."""
    try:
        with translate_errors(spec):
            client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except ReadError as exc:
        if exc.reason == "no such bucket":
            raise NotASource(f"SOURCE {spec}: no bucket {bucket!r}") from None
        if exc.reason == "access denied":
            raise NotASource(f"SOURCE {spec}: access denied listing it; the role needs s3:ListBucket on "
                              f"arn:aws:s3:::{bucket}") from None
        raise NotASource(f"SOURCE {spec}: {exc}") from None
