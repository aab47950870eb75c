"""The Lambda handler against moto's S3 and SQS over real sockets: a bucket notifies a queue, the
queue's messages go through `handle` exactly as Lambda's SQS event source would pass them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.aws.batch import handle
from indexer.catalog import Query
from indexer.ingest.events import Change, ObjectEvent
from indexer.ingest.sync import Sync
from indexer.record import Status, normalise_sequencer
from indexer.settings import ImageLimits
from indexer.sources.base import SourceItem, SourceUnavailable
from indexer.sources.s3 import S3Source, s3_uri

EVENTS = Path(__file__).parent.parent / "data" / "events"
KEYS = ["plain.jpg", "holiday photos/cat 1.png", "c++ + more.png", "100% real.jpg", "café/été ☕.jpg"]


@pytest.fixture
def sync(settings, labeller, catalog, aws) -> Sync:
    return Sync(settings, labeller, catalog, S3Source(settings))


def deliver(bucket, sync, expect: int = 1) -> dict:
    """Receive what the bucket sent and hand it to the handler; delete what it applied."""
    messages = bucket.messages(expect=expect)
    assert len(messages) >= expect, f"the bucket sent {len(messages)} messages, expected {expect}"
    result = handle(bucket.lambda_event(messages), sync)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        bucket.sqs.delete_message_batch(QueueUrl=bucket.queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
    return result


def notification(bucket, name: str, key: str, sequencer: int | None = None, **obj) -> str:
    """An S3 event notification body, shaped as AWS documents it (keys URL-encoded)."""
    from urllib.parse import quote_plus

    body = json.loads((EVENTS / "s3_put.json").read_text())
    record = body["Records"][0]
    record["eventName"] = name
    record["s3"]["bucket"] = {"name": bucket.name, "arn": f"arn:aws:s3:::{bucket.name}"}
    record["s3"]["object"] = {"key": quote_plus(key), **obj}
    if sequencer is not None:
        record["s3"]["object"]["sequencer"] = f"{sequencer:018X}"
    body["Records"] = [record]
    return json.dumps(body)


def send(bucket, *bodies: str) -> None:
    for body in bodies:
        bucket.sqs.send_message(QueueUrl=bucket.queue_url, MessageBody=body)


def drain_test_event(bucket, sync) -> None:
    assert deliver(bucket, sync) == {"batchItemFailures": []}


def test_the_test_event_is_ignored(bucket, sync, catalog):
    [message] = bucket.messages()
    assert json.loads(message["Body"])["Event"] == "s3:TestEvent"
    assert handle(bucket.lambda_event([message]), sync) == {"batchItemFailures": []}
    assert catalog.search(Query()).total == 0


def test_upload_overwrite_delete_with_awkward_keys(bucket, sync, catalog, photos):
    drain_test_event(bucket, sync)
    cat = (photos / "cat.png").read_bytes()
    for key in KEYS:
        bucket.put(key, cat)
    assert deliver(bucket, sync, expect=len(KEYS)) == {"batchItemFailures": []}
    for key in KEYS:
        record = catalog.get(s3_uri(bucket.name, key))
        assert record is not None, key
        assert record.status == Status.LABELED and "cat" in record.label_names, key
        assert (record.bucket, record.key, record.size) == (bucket.name, key, len(cat))
        assert record.etag and record.last_modified and record.content_type == "image/png"
    assert sorted(r.key for r in catalog.search(Query(all_of=("cat",), limit=50)).records) == sorted(KEYS)

    coffee = (photos / "coffee.jpg").read_bytes()
    etag = bucket.put(KEYS[1], coffee)["ETag"].strip('"')  # overwrite
    deliver(bucket, sync)
    record = catalog.get(s3_uri(bucket.name, KEYS[1]))
    assert record.best_labels(1)[0].name == "espresso" and record.etag == etag
    assert catalog.search(Query()).total == len(KEYS)  # replaced, not added

    for key in KEYS[:3]:
        bucket.s3.delete_object(Bucket=bucket.name, Key=key)
    deliver(bucket, sync, expect=3)
    assert sorted(r.key for r in catalog.search(Query()).records) == sorted(KEYS[3:])


def test_unreadable_objects_become_failed_records_not_retries(bucket, sync, catalog, photos):
    drain_test_event(bucket, sync)
    sync.pipeline.settings = sync.pipeline.settings.model_copy(
        update={"limits": ImageLimits(max_bytes=100_000)})
    sync.source.limits = ImageLimits(max_bytes=100_000)
    bucket.put("notes.jpg", b"shopping list: milk, eggs\n" * 20)
    bucket.put("big.png", (photos / "cat.png").read_bytes())  # 221 kB, over the 100 kB cap
    bucket.put("ok.jpg", (photos / "coffee.jpg").read_bytes())
    assert deliver(bucket, sync, expect=3) == {"batchItemFailures": []}  # nothing left for SQS to retry
    failed = {r.key: r.error for r in catalog.search(Query(status=Status.FAILED)).records}
    assert set(failed) == {"notes.jpg", "big.png"}
    assert "not an image" in failed["notes.jpg"] and "too large" in failed["big.png"]
    assert catalog.get(s3_uri(bucket.name, "ok.jpg")).status == Status.LABELED


def test_versioned_bucket_delete_marker_and_previous_version(versioned_bucket, sync, catalog, photos):
    bucket = versioned_bucket
    drain_test_event(bucket, sync)
    v1 = bucket.put("pet.png", (photos / "cat.png").read_bytes())["VersionId"]
    v2 = bucket.put("pet.png", (photos / "coffee.jpg").read_bytes())["VersionId"]
    deliver(bucket, sync, expect=2)
    uri = s3_uri(bucket.name, "pet.png")
    record = catalog.get(uri)
    assert record.version_id == v2 and record.best_labels(1)[0].name == "espresso"

    # permanently deleting the current version makes v1 current again (moto sends no event for it)
    bucket.s3.delete_object(Bucket=bucket.name, Key="pet.png", VersionId=v2)
    send(bucket, notification(bucket, "ObjectRemoved:Delete", "pet.png", versionId=v2))
    deliver(bucket, sync)
    record = catalog.get(uri)
    assert record.version_id == v1 and "cat" in record.label_names

    # a plain delete leaves a delete marker: the key is gone from search
    marker = bucket.s3.delete_object(Bucket=bucket.name, Key="pet.png")
    assert marker["DeleteMarker"]
    send(bucket, notification(bucket, "ObjectRemoved:DeleteMarkerCreated", "pet.png", versionId=marker["VersionId"]))
    deliver(bucket, sync)
    assert catalog.get(uri) is None and catalog.search(Query()).total == 0


def test_replays_and_out_of_order_events_leave_one_true_record(bucket, sync, catalog, photos):
    drain_test_event(bucket, sync)
    key = "late.png"
    uri = s3_uri(bucket.name, key)
    cat = (photos / "cat.png").read_bytes()
    etag = bucket.put(key, cat)["ETag"].strip('"')
    bucket.messages(expect=1)  # moto's own event (no sequencer) is dropped: we send our own
    created = notification(bucket, "ObjectCreated:Put", key, sequencer=1, size=len(cat), eTag=etag)

    # the same create five times: one record, labelled once
    send(bucket, created)
    deliver(bucket, sync)
    first = catalog.get(uri)
    assert first.sequencer == normalise_sequencer(f"{1:018X}")
    send(bucket, *[created] * 4)
    deliver(bucket, sync, expect=4)
    assert catalog.search(Query()).total == 1
    assert catalog.get(uri).indexed_at == first.indexed_at  # never written again

    # deleted (event 2); then the key is written again (event 3) but event 3 is still on its way
    bucket.s3.delete_object(Bucket=bucket.name, Key=key)
    send(bucket, notification(bucket, "ObjectRemoved:Delete", key, sequencer=2))
    deliver(bucket, sync, expect=2)  # moto's delete event and ours
    assert catalog.get(uri) is None
    bucket.put(key, (photos / "coffee.jpg").read_bytes())
    bucket.messages(expect=1)  # dropped: it arrives later, below
    # a late replay of event 1 finds an object to read, but the tombstone (2) outranks it
    send(bucket, created)
    deliver(bucket, sync)
    assert catalog.get(uri) is None and catalog.search(Query()).total == 0

    # event 3 arrives: the new upload is in search
    send(bucket, notification(bucket, "ObjectCreated:Put", key, sequencer=3))
    deliver(bucket, sync)
    assert catalog.get(uri).best_labels(1)[0].name == "espresso"


def test_a_create_for_an_object_already_gone_indexes_nothing(bucket, sync, catalog, photos):
    drain_test_event(bucket, sync)
    bucket.put("brief.png", (photos / "cat.png").read_bytes())
    bucket.s3.delete_object(Bucket=bucket.name, Key="brief.png")
    assert deliver(bucket, sync, expect=2) == {"batchItemFailures": []}  # create, then delete
    assert catalog.search(Query()).total == 0


def test_one_poisoned_message_in_ten_fails_alone(bucket, sync, catalog, photos):
    drain_test_event(bucket, sync)
    for i in range(9):
        bucket.put(f"batch/{i}.jpg", (photos / "coffee.jpg").read_bytes())
    send(bucket, "this is not an S3 event")
    messages = bucket.messages(expect=10)
    assert len(messages) == 10
    poisoned = next(m["MessageId"] for m in messages if m["Body"] == "this is not an S3 event")
    result = handle(bucket.lambda_event(messages), sync)
    assert result == {"batchItemFailures": [{"itemIdentifier": poisoned}]}
    assert catalog.search(Query(all_of=("espresso",))).total == 9


def test_transient_failures_fail_their_messages_and_succeed_on_retry(bucket, sync, catalog, photos, settings):
    drain_test_event(bucket, sync)
    bucket.put("a.jpg", (photos / "coffee.jpg").read_bytes())
    bucket.put("b.png", (photos / "cat.png").read_bytes())
    messages = bucket.messages(expect=2)
    # S3 unreachable (a closed port; one attempt, no backoff): both messages fail, nothing written
    down = S3Source(settings.model_copy(update={"s3_endpoint": "http://127.0.0.1:9", "aws_max_attempts": 1}))
    broken = Sync(sync.pipeline.settings, sync.pipeline.labeller, catalog, down)
    result = handle(bucket.lambda_event(messages), broken)
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(m["MessageId"] for m in messages)
    assert catalog.search(Query()).total == 0
    # SQS hands them out again; now S3 answers
    assert handle(bucket.lambda_event(messages), sync) == {"batchItemFailures": []}
    assert catalog.search(Query()).total == 2


def test_a_catalogue_failure_fails_the_message(bucket, sync, settings, labeller, photos):
    from indexer.catalog import open_catalog

    drain_test_event(bucket, sync)
    bucket.put("a.jpg", (photos / "coffee.jpg").read_bytes())
    [message] = bucket.messages()
    closed = open_catalog(settings.catalog)
    closed.close()  # every call now raises, as an unreachable catalogue would
    result = handle(bucket.lambda_event([message]), Sync(settings, labeller, closed, sync.source))
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}


def test_direct_s3_notification_and_eventbridge(bucket, sync, catalog, photos):
    drain_test_event(bucket, sync)
    key = "eb/red flower été.png"
    bucket.put(key, (photos / "cat.png").read_bytes())
    bucket.messages(expect=1)
    created = json.loads((EVENTS / "eventbridge_object_created.json").read_text())
    created["detail"]["bucket"]["name"] = bucket.name
    created["detail"]["object"]["key"] = "eb/red+flower+%C3%A9t%C3%A9.png"
    assert handle(created, sync) == {"batchItemFailures": []}
    assert "cat" in catalog.get(s3_uri(bucket.name, key)).label_names

    bucket.s3.delete_object(Bucket=bucket.name, Key=key)
    bucket.messages(expect=1)
    deleted = json.loads((EVENTS / "eventbridge_object_deleted.json").read_text())
    deleted["detail"]["bucket"]["name"] = bucket.name
    deleted["detail"]["object"]["key"] = created["detail"]["object"]["key"]
    handle(deleted, sync)
    assert catalog.get(s3_uri(bucket.name, key)) is None

    bucket.put("direct.png", (photos / "cat.png").read_bytes())
    bucket.messages(expect=1)
    handle(json.loads(notification(bucket, "ObjectCreated:Put", "direct.png")), sync)  # S3 -> Lambda
    assert catalog.get(s3_uri(bucket.name, "direct.png")) is not None


def test_a_direct_event_raises_when_s3_is_down(bucket, settings, labeller, catalog):
    down = S3Source(settings.model_copy(update={"s3_endpoint": "http://127.0.0.1:9", "aws_max_attempts": 1}))
    event = ObjectEvent(Change.CREATED, SourceItem(s3_uri(bucket.name, "x.jpg"), bucket=bucket.name, key="x.jpg"))
    with pytest.raises(SourceUnavailable, match="unreachable"):
        Sync(settings, labeller, catalog, down).apply([event])


@pytest.mark.parametrize("size", [0, 60 * 1024 * 1024])
def test_a_late_event_is_judged_by_the_object_as_it_is_now(bucket, sync, catalog, photos, size):
    """A duplicated or late create without a sequencer says 0 bytes or 60 MB: the object is read as
    it is now, so a good record stays good and a deleted key gets no phantom record."""
    drain_test_event(bucket, sync)
    bucket.put("late.png", (photos / "cat.png").read_bytes())
    handle(bucket.lambda_event(bucket.messages(expect=1)), sync)
    assert catalog.get(s3_uri(bucket.name, "late.png")).status == Status.LABELED
    late = json.loads(notification(bucket, "ObjectCreated:Put", "late.png", size=size))
    assert handle(late, sync) == {"batchItemFailures": []}
    assert catalog.get(s3_uri(bucket.name, "late.png")).status == Status.LABELED
    handle(json.loads(notification(bucket, "ObjectCreated:Put", "gone.png", size=size)), sync)  # never there
    assert catalog.get(s3_uri(bucket.name, "gone.png")) is None
