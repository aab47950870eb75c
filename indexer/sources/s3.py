"""The S3 source: head, list and read objects (boto3), for AWS S3 and S3-compatible stores.

The endpoint comes from `PIXDEX_S3_ENDPOINT`, else boto3's own `AWS_ENDPOINT_URL` (MinIO, a local
emulator); botocore retries throttling and 5xx in adaptive mode before anything here sees them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from indexer.images import check_size
from indexer.settings import Settings
from indexer.sources.base import Fetched, ObjectMissing, ReadError, SourceItem, SourceUnavailable

MISSING = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}
# worth a retry: throttling, and credentials or clocks that will be right again (an expiring
# session must not turn every upload into a FAILED record)
TRANSIENT = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
             "ServiceUnavailable", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
             "RequestTimeTooSkewed", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


def s3_uri(bucket: str, key: str) -> str:
    """Canonical `s3://bucket/key` with the key as stored (not URL-encoded): the record id's basis."""
    return f"s3://{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    return parsed.netloc, uri[len(f"s3://{parsed.netloc}/"):]


def make_client(settings: Settings, service: str = "s3", threads: int = 0) -> Any:
    """A boto3 client with adaptive retries, and a connection per thread that uses it (`threads`,
    else twice the decode workers); one per container (clients are thread-safe). S3 signs with
    SigV4 throughout: botocore would sign pre-signed POSTs with SigV2, which S3 refuses for
    KMS-encrypted buckets and in newer regions."""
    config = Config(retries={"mode": "adaptive", "max_attempts": settings.aws_max_attempts},
                    max_pool_connections=max(10, threads, 2 * settings.decode_workers),
                    connect_timeout=5, read_timeout=60, signature_version="s3v4" if service == "s3" else None)
    session = boto3.session.Session(**settings.aws.session_kwargs())
    return session.client(service, endpoint_url=settings.s3_endpoint, config=config)


class S3Source:
    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.limits = settings.limits
        self.client = client or make_client(settings)

    def read(self, item: SourceItem) -> Fetched:
        """The current object under the key, read whole only when under the byte cap. Whether it is
        too large or empty is decided from the object as it is now (the GET's own length, before
        its body is read), never from the size an event or a listing gave: a late or duplicated
        event must not turn a good record into a FAILED one, nor make a record of a deleted key."""
        bucket, key = split_s3_uri(item.uri)
        with translate_errors(item.uri):
            resp = self.client.get_object(Bucket=bucket, Key=key)
            body = resp["Body"]
            try:
                check_size(resp["ContentLength"], self.limits)
                data = body.read(self.limits.max_bytes + 1)
                check_size(len(data), self.limits)  # a store that lied about the length
                if len(data) != resp["ContentLength"]:  # botocore does not check a body read with a size
                    raise SourceUnavailable(f"S3 sent {len(data)} of {resp['ContentLength']} bytes of {item.uri}")
            finally:
                body.close()
        return Fetched(_described(item, bucket, key, resp), data)

    def head(self, uri: str) -> SourceItem | None:
        """Raises ReadError when S3 will not say (403: no s3:ListBucket, or no access)."""
        bucket, key = split_s3_uri(uri)
        try:
            with translate_errors(uri):
                resp = self.client.head_object(Bucket=bucket, Key=key)
        except ObjectMissing:
            return None
        return _described(SourceItem(uri=uri), bucket, key, resp)

    def list(self, bucket: str, prefix: str = "") -> Iterator[SourceItem]:
        """Every object under the prefix (ListObjectsV2 pages, streamed)."""
        with translate_errors(s3_uri(bucket, prefix)):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield SourceItem(uri=s3_uri(bucket, obj["Key"]), bucket=bucket, key=obj["Key"],
                                     size=obj["Size"], etag=obj["ETag"].strip('"'),
                                     last_modified=obj["LastModified"])


def _described(item: SourceItem, bucket: str, key: str, resp: dict) -> SourceItem:
    """The item as the store describes it now (GET or HEAD response)."""
    return replace(item, bucket=bucket, key=key, size=resp.get("ContentLength", item.size),
                   etag=resp.get("ETag", "").strip('"') or item.etag,
                   version_id=resp.get("VersionId") or item.version_id,
                   last_modified=resp.get("LastModified", item.last_modified))


@contextmanager
def translate_errors(uri: str) -> Iterator[None]:
    """Botocore errors as the three kinds the pipeline acts on (see indexer.sources.base), naming `uri`."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT or status >= 500:
            raise SourceUnavailable(f"S3 failed reading {uri}: {code} (HTTP {status})") from exc
        if code == "NoSuchBucket":
            raise ReadError(f"cannot read {uri}: NoSuchBucket; check the bucket name", "no such bucket") from None
        if code in MISSING or status == 404:
            raise ObjectMissing(f"{uri} no longer exists (deleted after it was listed or announced)") from None
        if code == "InvalidObjectState":
            raise ReadError(f"cannot read {uri}: archived (Glacier storage class); restore it first",
                            "archived") from None
        if status == 403:
            raise ReadError(f"cannot read {uri}: {code or 'Forbidden'}: the role may lack s3:GetObject, or the "
                            f"object is gone and the role lacks s3:ListBucket (S3 then answers 403, not 404)",
                            "access denied") from None
        raise ReadError(f"cannot read {uri}: {code}: {error.get('Message', '')}") from None
    except BotoCoreError as exc:  # no connection, timeouts, a body cut short
        raise SourceUnavailable(f"S3 unreachable reading {uri}: {exc}") from exc
