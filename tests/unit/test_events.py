"""indexer.ingest.events: every event shape becomes the same ObjectEvents (samples shaped as AWS documents them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.ingest.events import Change, EventError, ObjectEvent, parse, parse_body
from indexer.record import normalise_sequencer
from indexer.sources.base import SourceItem

EVENTS = Path(__file__).parent.parent / "data" / "events"


def sample(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_s3_notification_decodes_every_records_key():
    first, second = parse(sample("s3_put.json"))
    assert first == ObjectEvent(Change.CREATED, SourceItem(
        "s3://mybucket/HappyFace.jpg", bucket="mybucket", key="HappyFace.jpg", size=1024,
        etag="d41d8cd98f00b204e9800998ecf8427e", version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko",
        sequencer=normalise_sequencer("0055AED6DCD90281E5")), name="ObjectCreated:Put")
    # Powertools' S3Event.object_key decodes only the first record; the second must be decoded too
    assert second.item.key == "holiday 2026/café + % sun.jpg"
    assert second.uri == "s3://mybucket/holiday 2026/café + % sun.jpg"
    assert second.change == Change.CREATED and second.item.version_id is None
    assert first.sequencer < second.sequencer


def test_delete_marker_is_a_removal():
    [event] = parse(sample("s3_delete_marker.json"))
    assert event.change == Change.REMOVED and event.item.key == "HappyFace.jpg"
    assert event.item.etag is None and event.item.size is None
    assert event.sequencer == normalise_sequencer("0055AED6DCD90281F9")


@pytest.mark.parametrize("name", ["s3_test_event.json", "s3_tagging.json"])
def test_test_events_and_other_types_change_nothing(name):
    assert parse(sample(name)) == []


def test_eventbridge_created_and_deleted():
    [created] = parse(sample("eventbridge_object_created.json"))
    [deleted] = parse(sample("eventbridge_object_deleted.json"))
    assert created.change == Change.CREATED and deleted.change == Change.REMOVED
    assert created.uri == deleted.uri == "s3://amzn-s3-demo-bucket1/photos/red flower été.jpg"
    assert created.item.size == 5 and created.item.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert created.sequencer < deleted.sequencer
    assert created.name == "Object Created: PutObject"
    assert deleted.name == "Object Deleted: DeleteObject"


def test_eventbridge_types_pixdex_does_not_act_on():
    doc = sample("eventbridge_object_created.json")
    doc["detail-type"] = "Object Tags Added"
    assert parse(doc) == []


def test_sqs_body_and_sns_envelope():
    body = json.dumps(sample("s3_put.json"))
    assert parse_body(body) == parse(sample("s3_put.json"))
    envelope = {"Type": "Notification", "MessageId": "a1", "TopicArn": "arn:aws:sns:us-west-2:1:photos",
                "Message": body, "Timestamp": "2026-11-20T10:00:00.000Z"}
    assert parse_body(json.dumps(envelope)) == parse(sample("s3_put.json"))


@pytest.mark.parametrize(("body", "says"), [
    ("not json at all", "not JSON"),
    ('["a", "list"]', "expected a JSON object"),
    ('{"hello": "world"}', "keys: hello"),
    ('{"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT"}]}', "aws:dynamodb"),
])
def test_bodies_that_are_no_bucket_event_are_refused_by_name(body, says):
    with pytest.raises(EventError, match=says):
        parse_body(body)


def test_a_malformed_sequencer_is_an_event_error():
    doc = sample("s3_put.json")
    doc["Records"][0]["s3"]["object"]["sequencer"] = "zz-not-hex"
    with pytest.raises(EventError, match="sequencer"):
        parse(doc)
