"""Starts a backfill when a new S3 Inventory is complete.

S3 writes an inventory's data files, then its manifest.json, then manifest.checksum last, so the
checksum's "Object Created" event (EventBridge) means the whole inventory is there. This submits
one AWS Batch array job over its manifest: SHARDS children, each taking its shard from
AWS_BATCH_JOB_ARRAY_INDEX and PIXDEX_SHARDS (backfill/shard.py).

EventBridge delivers at least once, and two deliveries can run at the same time. So the first
step is an atomic claim: a conditional put (If-None-Match: *) of `pixdex-backfill.json` beside the
manifest, which only one invocation can win; it then submits the job and writes the job's id into
the claim. A claim whose submit failed is removed, so EventBridge's retry submits again; one left
"submitting" by an invocation that died (older than CLAIM_STALE_SECONDS, far above the function's
timeout) is taken over, again conditionally (If-Match its ETag). Runs on
the Lambda Python runtime with its own boto3; nothing from pixdex is imported.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime

import boto3
from botocore.exceptions import ClientError

CHECKSUM = "manifest.checksum"
CLAIM = "pixdex-backfill.json"
_clients: dict = {}


def _client(service: str):
    if service not in _clients:
        _clients[service] = boto3.client(service)
    return _clients[service]


def job_name(key: str) -> str:
    """Batch job names: 1-128 letters, digits, '-' or '_', starting with a letter or digit. The
    end of the key holds the inventory's date, so the name keeps the end."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", key.removesuffix(CHECKSUM).rstrip("/"))
    return "pixdex-backfill-" + stem[-(128 - len("pixdex-backfill-")):]


def shards() -> int:
    value = os.environ.get("SHARDS", "")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"SHARDS={value!r}: expected the number of backfill children, 1 or more")
    return int(value)


def _claim(s3, bucket: str, key: str, **condition) -> bool:
    """A conditional put of the claim: True if this invocation now holds it."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b'{"state": "submitting"}', **condition)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
            return False
        raise
    return True


def handler(event: dict, _context=None) -> dict:
    detail = event.get("detail") or {}
    try:
        bucket, key = detail["bucket"]["name"], detail["object"]["key"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an S3 'Object Created' event: missing {exc}") from exc
    if key != CHECKSUM and not key.endswith("/" + CHECKSUM):
        return {"submitted": None, "reason": f"{key} is not an inventory's {CHECKSUM}"}
    folder = key.removesuffix(CHECKSUM)
    manifest, claim = f"s3://{bucket}/{folder}manifest.json", folder + CLAIM
    size, name = shards(), job_name(key)

    s3 = _client("s3")
    if not _claim(s3, bucket, claim, IfNoneMatch="*"):
        earlier = s3.get_object(Bucket=bucket, Key=claim)
        state = json.loads(earlier["Body"].read())
        age = (datetime.now(UTC) - earlier["LastModified"]).total_seconds()
        stale = "jobId" not in state and age > float(os.environ.get("CLAIM_STALE_SECONDS", "600"))
        if not (stale and _claim(s3, bucket, claim, IfMatch=earlier["ETag"])):
            return {"submitted": None, "existing": state.get("jobId"), "source": manifest}
    try:
        job = _client("batch").submit_job(
            jobName=name, jobQueue=os.environ["JOB_QUEUE"], jobDefinition=os.environ["JOB_DEFINITION"],
            parameters={"source": manifest},
            containerOverrides={"environment": [{"name": "PIXDEX_SHARDS", "value": str(size)}]},
            **({"arrayProperties": {"size": size}} if size > 1 else {}),  # Batch arrays have 2-10000 children
        )
    except Exception:
        s3.delete_object(Bucket=bucket, Key=claim)  # not submitted: let the retry claim it again
        raise
    s3.put_object(Bucket=bucket, Key=claim, Body=json.dumps({"jobId": job["jobId"], "jobName": name}).encode())
    return {"submitted": job["jobId"], "name": name, "source": manifest, "shards": size}
