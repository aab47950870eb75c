"""What to backfill: SOURCE as given on the command line, streamed as items, with skip reasons.

SOURCE is `s3://bucket/prefix` (a ListObjectsV2 listing), the `s3://.../manifest.json` of an S3
Inventory report, a local folder, or a text file of URIs (s3://, file:// or absolute paths), one
per line. No listing is ever held whole in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


Listed = SourceItem | Skipped


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
            if skip:
                yield Skipped(file_uri(path) + ("/" if skip == "hidden folder" else ""), skip)
            else:
                yield source_item(path)

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
    """Lines: s3://bucket/key, file:///abs/path or /abs/path; blank lines and # comments are ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"{path} (list of URIs)"
        with path.open(encoding="utf-8") as f:
            self.total = sum(1 for line in f if line.strip() and not line.lstrip().startswith("#"))

    def items(self) -> Iterator[Listed]:
        with self.path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                if text.startswith("s3://"):
                    try:
                        bucket, key = split_s3_uri(text)
                    except ValueError:
                        bucket = key = ""
                    yield SourceItem(uri=text, bucket=bucket, key=key) if key else \
                        Skipped(f"line {number}: {text}", "not an s3://bucket/key URI")
                elif text.startswith(("file://", "/")):
                    yield source_item(uri_path(text) if text.startswith("file://") else Path(text))
                else:
                    yield Skipped(f"line {number}: {text}", "not an s3://, file:// URI or absolute path")


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
