"""Bucket events, whatever shape they arrive in, normalised into one type: `ObjectEvent`.

Shapes read (through the Powertools data classes): S3 event notifications (direct, in an SQS
message body, or in an SNS envelope in an SQS body), EventBridge "Object Created" / "Object
Deleted" events from S3, and the `s3:TestEvent` S3 sends when a notification is configured.
Everything after this module handles `ObjectEvent` only (one type, handled once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent

from indexer.errors import InputError
from indexer.record import normalise_sequencer
from indexer.sources.base import SourceItem
from indexer.sources.s3 import s3_uri

REMOVALS = {"ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated",
            "LifecycleExpiration:Delete", "LifecycleExpiration:DeleteMarkerCreated"}


class EventError(InputError):
    """A message that is no bucket event pixdex understands; the message names what it saw."""


class Change(StrEnum):
    CREATED = "created"
    REMOVED = "removed"


@dataclass(frozen=True)
class ObjectEvent:
    change: Change
    item: SourceItem  # the object as the event describes it; its sequencer orders the event
    name: str = ""  # what the source called it (ObjectCreated:Put, Object Deleted, ...), for logs

    @property
    def uri(self) -> str:
        return self.item.uri

    @property
    def sequencer(self) -> str | None:
        return self.item.sequencer


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
        key = unquote_plus(obj["key"])  # URL-encoded in every record (Powertools decodes only the first)
        events.append(_event(change, name, record.s3.bucket.name, key, obj.get("size"), obj.get("eTag"),
                             obj.get("versionId"), obj.get("sequencer")))
    return events


def _from_eventbridge(doc: Mapping[str, Any]) -> list[ObjectEvent]:
    event = S3EventBridgeNotificationEvent(dict(doc))
    kind = event.detail_type
    change = {"Object Created": Change.CREATED, "Object Deleted": Change.REMOVED}.get(kind)
    if change is None:
        return []
    obj = event.detail.object  # the data class decodes the key (unquote_plus)
    name = f"{kind}: {event.detail.reason or event.detail.deletion_type or ''}".rstrip(": ")
    return [_event(change, name, event.detail.bucket.name, obj.key, obj.size, obj.etag, obj.get("version-id"),
                   obj.get("sequencer"))]


def _event(change: Change, name: str, bucket: str, key: str, size: int | None, etag: str | None,
           version_id: str | None, sequencer: str | None) -> ObjectEvent:
    try:
        sequencer = normalise_sequencer(sequencer)
    except ValueError as exc:
        raise EventError(str(exc)) from None
    return ObjectEvent(change, SourceItem(uri=s3_uri(bucket, key), bucket=bucket, key=key, size=size,
                                          etag=etag or None, version_id=version_id, sequencer=sequencer), name)
