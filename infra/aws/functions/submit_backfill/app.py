"""Starts a backfill when a new S3 Inventory is complete.

S3 writes an inventory's data files, then its manifest.json, then manifest.checksum last, so the
checksum's "Object Created" event (EventBridge) means the whole inventory is there. This submits
one AWS Batch array job over its manifest: BackfillShards children, each taking its shard from
AWS_BATCH_JOB_ARRAY_INDEX and PIXDEX_SHARDS (backfill/shard.py).

EventBridge delivers at least once, so the job is named after the inventory and a second event for
the same manifest finds the first job instead of submitting another. Runs on the Lambda Python
runtime with its own boto3; nothing from pixdex is imported.
"""

from __future__ import annotations

import os
import re

import boto3

CHECKSUM = "manifest.checksum"
_batch = None


def _client():
    global _batch
    if _batch is None:
        _batch = boto3.client("batch")
    return _batch


def job_name(key: str) -> str:
    """Batch job names: 1-128 letters, digits, '-' or '_', starting with a letter or digit. The
    end of the key holds the inventory's date, so the name keeps the end."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", key.removesuffix(CHECKSUM).rstrip("/"))
    return "pixdex-backfill-" + stem[-(128 - len("pixdex-backfill-")):]


def handler(event: dict, _context=None) -> dict:
    detail = event.get("detail") or {}
    try:
        bucket, key = detail["bucket"]["name"], detail["object"]["key"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an S3 'Object Created' event: missing {exc}") from exc
    if key != CHECKSUM and not key.endswith("/" + CHECKSUM):
        return {"submitted": None, "reason": f"{key} is not an inventory's {CHECKSUM}"}
    manifest = f"s3://{bucket}/{key.removesuffix(CHECKSUM)}manifest.json"
    name, queue = job_name(key), os.environ["JOB_QUEUE"]
    shards = int(os.environ["SHARDS"])
    if shards < 1:
        raise ValueError(f"SHARDS must be at least 1, not {shards}")

    batch = _client()
    # with a filter, ListJobs returns every status (SUBMITTED ... SUCCEEDED, FAILED)
    earlier = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])["jobSummaryList"]
    if earlier:
        return {"submitted": None, "existing": earlier[0]["jobId"], "source": manifest}
    job = batch.submit_job(
        jobName=name, jobQueue=queue, jobDefinition=os.environ["JOB_DEFINITION"],
        parameters={"source": manifest},
        containerOverrides={"environment": [{"name": "PIXDEX_SHARDS", "value": str(shards)}]},
        **({"arrayProperties": {"size": shards}} if shards > 1 else {}),  # Batch arrays have 2-10000 children
    )
    return {"submitted": job["jobId"], "name": name, "source": manifest, "shards": shards}
