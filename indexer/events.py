"""Bucket events, whatever shape they arrive in, normalised into one type: `ObjectEvent`.

Shapes read (through the Powertools data classes): S3 event notifications (direct, in an SQS
message body, or in an SNS envelope in an SQS body), EventBridge "Object Created" / "Object
Deleted" events from S3, and the `s3:TestEvent` S3 sends when a notification is configured.
Everything after this module handles `ObjectEvent` only (STYLE.md: one type, handled once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent

from indexer.record import normalise_sequencer
from indexer.s3 import s3_uri
from indexer.source import SourceItem

REMOVALS = {"ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated",
            "LifecycleExpiration:Delete", "LifecycleExpiration:DeleteMarkerCreated"}


class EventError(ValueError):
    """A message that is no bucket event pixdex understands; the message names what it saw."""


class Change(StrEnum):
    CREATED = "created"
    REMOVED = "removed"


@dataclass(frozen=True)
class ObjectEvent:
    change: Change
    uri: str
    bucket: str | None = None
    key: str | None = None
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None  # normalised: text order is event order
    last_modified: datetime | None = None
    name: str = ""  # what the source called it (ObjectCreated:Put, Object Deleted, ...), for logs

    def item(self) -> SourceItem:
        return SourceItem(uri=self.uri, bucket=self.bucket, key=self.key, size=self.size, etag=self.etag or None,
                          version_id=self.version_id, sequencer=self.sequencer, last_modified=self.last_modified)


def parse(doc: Mapping[str, Any]) -> list[ObjectEvent]:
    """Events in one S3 notification, EventBridge event, SNS envelope or test event. Event types
    pixdex does not act on (tagging, ACL, restore, ...) give no events; anything else is an
    EventError."""
    if not isinstance(doc, Mapping):
        raise EventError(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("Event") == "s3:TestEvent":
        return []
    if isinstance(doc.get("Records"), list):
        return _from_s3_notification(doc)
    if doc.get("source") == "aws.s3" and "detail-type" in doc:
        return _from_eventbridge(doc)
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):  # S3 -> SNS -> SQS
        return parse_body(doc["Message"])
    raise EventError(f"not an S3 event notification, EventBridge S3 event or S3 test event "
                     f"(keys: {', '.join(sorted(doc)) or 'none'})")


def parse_body(body: str) -> list[ObjectEvent]:
    """Events in an SQS message body (JSON text)."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise EventError(f"message body is not JSON: {exc}; starts {str(body)[:60]!r}") from None
    return parse(doc)


def _from_s3_notification(doc: Mapping[str, Any]) -> list[ObjectEvent]:
    events = []
    for record in S3Event(dict(doc)).records:
        name = record.get("eventName", "").removeprefix("s3:")
        if record.get("eventSource") != "aws:s3":
            raise EventError(f"record from {record.get('eventSource')!r}, not aws:s3")
        change = Change.CREATED if name.startswith("ObjectCreated:") else Change.REMOVED if name in REMOVALS else None
        if change is None:
            continue
        obj = record.s3.get_object
        bucket = record.s3.bucket.name
        key = unquote_plus(obj["key"])  # URL-encoded in every record (Powertools decodes only the first)
        events.append(ObjectEvent(change, s3_uri(bucket, key), bucket, key, size=obj.get("size"),
                                  etag=obj.get("eTag") or None, version_id=obj.get("versionId"),
                                  sequencer=_sequencer(obj.get("sequencer")), name=name))
    return events


def _from_eventbridge(doc: Mapping[str, Any]) -> list[ObjectEvent]:
    event = S3EventBridgeNotificationEvent(dict(doc))
    kind = event.detail_type
    change = {"Object Created": Change.CREATED, "Object Deleted": Change.REMOVED}.get(kind)
    if change is None:
        return []
    obj = event.detail.object
    bucket = event.detail.bucket.name
    key = obj.key  # the data class decodes it (unquote_plus)
    return [ObjectEvent(change, s3_uri(bucket, key), bucket, key, size=obj.size, etag=obj.etag or None,
                        version_id=obj.get("version-id"), sequencer=_sequencer(obj.get("sequencer")),
                        name=f"{kind}: {event.detail.reason or event.detail.deletion_type or ''}".rstrip(": "))]


def _sequencer(raw: str | None) -> str | None:
    try:
        return normalise_sequencer(raw)
    except ValueError as exc:
        raise EventError(str(exc)) from None
