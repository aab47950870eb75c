"""S3 Inventory reports: `manifest.json` -> data files -> the objects they list, streamed.

What S3 writes (docs: "Locating your inventory list"): `.../YYYY-MM-DDTHH-MMZ/manifest.json`, whose
`files` name gzip CSV (or Parquet, ORC) data files in the destination bucket and whose
`fileSchema` gives the column order; `manifest.checksum` beside it holds the MD5 of manifest.json.
CSV keys are URL-encoded. Each data file is downloaded to a temporary file, checked against its
`MD5checksum`, then read row by row, so memory stays flat and no HTTP stream idles while the
pipeline is busy.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any
from urllib.parse import unquote_plus

from indexer.errors import UsageError
from indexer.sources.base import ObjectMissing, ReadError, SourceItem
from indexer.sources.s3 import s3_uri, split_s3_uri, translate_errors

# Parquet column names -> the CSV fileSchema names
PARQUET_COLUMNS = {"bucket": "Bucket", "key": "Key", "version_id": "VersionId", "is_latest": "IsLatest",
                   "is_delete_marker": "IsDeleteMarker", "size": "Size", "last_modified_date": "LastModifiedDate",
                   "e_tag": "ETag"}


class InventoryError(UsageError):
    """The manifest or a data file is not a readable S3 Inventory report; the message says which."""


@dataclass(frozen=True)
class DataFile:
    bucket: str
    key: str
    size: int | None
    md5: str | None


@dataclass(frozen=True)
class Manifest:
    uri: str
    source_bucket: str
    file_format: str  # CSV | Parquet | ORC
    columns: tuple[str, ...]  # CSV names (Bucket, Key, ...), in file order for CSV
    files: tuple[DataFile, ...]

    @classmethod
    def parse(cls, uri: str, raw: bytes) -> Manifest:
        try:
            doc = json.loads(raw)
            dest = doc["destinationBucket"].removeprefix("arn:aws:s3:::")
            fmt = doc["fileFormat"]
            files = tuple(DataFile(dest, f["key"], f.get("size"), f.get("MD5checksum")) for f in doc["files"])
            source = doc["sourceBucket"]
            schema = doc.get("fileSchema", "")
        except (ValueError, KeyError, TypeError) as exc:
            raise InventoryError(f"{uri} is not an S3 Inventory manifest.json: {exc!r}") from None
        if fmt == "CSV":
            columns = tuple(c.strip() for c in schema.split(","))
            if "Key" not in columns:
                raise InventoryError(f"{uri}: fileSchema {schema!r} has no Key column")
        elif fmt == "Parquet":
            columns = ()  # named inside each file
        else:
            raise InventoryError(f"{uri}: {fmt} inventories are not supported; configure CSV or Parquet")
        return cls(uri, source, fmt, columns, files)


@dataclass(frozen=True)
class Row:
    """One inventory line: an object, or why it is not one to label."""

    item: SourceItem
    skip: str | None = None  # "delete marker", "not the latest version"


class Inventory:
    def __init__(self, client: Any, manifest_uri: str) -> None:
        self.client = client
        self.manifest = self._read_manifest(manifest_uri)

    def _read_manifest(self, uri: str) -> Manifest:
        bucket, key = split_s3_uri(uri)
        with translate_errors(uri):
            raw = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        checksum_key = key.rsplit("/", 1)[0] + "/manifest.checksum" if "/" in key else "manifest.checksum"
        try:
            with translate_errors(s3_uri(bucket, checksum_key)):
                expected = self.client.get_object(Bucket=bucket, Key=checksum_key)["Body"].read().decode().split()
        except ReadError as exc:  # optional: only S3 writes it. Without s3:ListBucket S3 says 403, not 404
            if not isinstance(exc, ObjectMissing) and exc.reason != "access denied":
                raise
            expected = None
        if expected and hashlib.md5(raw, usedforsecurity=False).hexdigest() != expected[0].lower():
            raise InventoryError(f"{uri} does not match {s3_uri(bucket, checksum_key)}: the manifest is damaged or "
                                 f"was rewritten; take the whole report again")
        return Manifest.parse(uri, raw)

    def rows(self, files: Iterator[int] | None = None) -> Iterator[Row]:
        """The objects listed by the data files at positions `files` (default: all), in order."""
        for position in files if files is not None else range(len(self.manifest.files)):
            yield from self._file_rows(self.manifest.files[position])

    def _file_rows(self, f: DataFile) -> Iterator[Row]:
        with tempfile.TemporaryFile(prefix="pixdex-inventory-") as tmp:
            md5 = hashlib.md5(usedforsecurity=False)
            with translate_errors(s3_uri(f.bucket, f.key)):
                body = self.client.get_object(Bucket=f.bucket, Key=f.key)["Body"]
                for chunk in iter(lambda: body.read(1 << 20), b""):
                    md5.update(chunk)
                    tmp.write(chunk)
            if f.md5 and md5.hexdigest() != f.md5.lower():
                raise InventoryError(f"{s3_uri(f.bucket, f.key)}: MD5 {md5.hexdigest()} is not the manifest's "
                                     f"{f.md5}; the data file is damaged")
            tmp.seek(0)
            if self.manifest.file_format == "CSV":
                yield from self._csv_rows(tmp, f)
            else:
                yield from self._parquet_rows(tmp, f)

    def _csv_rows(self, tmp: IO[bytes], f: DataFile) -> Iterator[Row]:
        columns = self.manifest.columns
        try:
            with gzip.open(tmp, "rt", encoding="utf-8", newline="") as text:
                for values in csv.reader(text):
                    if len(values) != len(columns):
                        raise InventoryError(f"{s3_uri(f.bucket, f.key)}: a row has {len(values)} fields, the "
                                             f"fileSchema {len(columns)}")
                    fields = dict(zip(columns, values, strict=True))
                    fields["Key"] = unquote_plus(fields["Key"])  # CSV keys are URL-encoded
                    yield self._row(fields)
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise InventoryError(f"{s3_uri(f.bucket, f.key)} is not a gzip CSV inventory file: {exc}") from None

    def _parquet_rows(self, tmp: IO[bytes], f: DataFile) -> Iterator[Row]:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InventoryError(f"{self.manifest.uri} is a Parquet inventory: pip install 'pixdex[parquet]' "
                                 f"(pyarrow), or configure the inventory as CSV") from None
        try:
            parquet = pq.ParquetFile(io.BufferedReader(tmp))
            wanted = [c for c in parquet.schema_arrow.names if c in PARQUET_COLUMNS]
            if "key" not in wanted:
                raise InventoryError(f"{s3_uri(f.bucket, f.key)}: a Parquet inventory file without a key column")
            for batch in parquet.iter_batches(columns=wanted, batch_size=10_000):
                for values in batch.to_pylist():
                    yield self._row({PARQUET_COLUMNS[k]: v for k, v in values.items()})
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            raise InventoryError(f"{s3_uri(f.bucket, f.key)} is not a Parquet inventory file: {exc}") from None

    def _row(self, fields: dict[str, Any]) -> Row:
        bucket, key = fields.get("Bucket") or self.manifest.source_bucket, fields["Key"]
        item = SourceItem(uri=s3_uri(bucket, key), bucket=bucket, key=key, size=_int(fields.get("Size")),
                          last_modified=_time(fields.get("LastModifiedDate")), etag=fields.get("ETag") or None,
                          version_id=fields.get("VersionId") or None)
        if _true(fields.get("IsDeleteMarker")):
            return Row(item, "delete marker")
        if fields.get("IsLatest") not in (None, "") and not _true(fields["IsLatest"]):
            return Row(item, "not the latest version")
        return Row(item)


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
