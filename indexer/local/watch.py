"""Long-running event loops: `pixdex watch --queue URL` (SQS, the Lambda's path without Lambda)
and `pixdex watch DIR` (a folder, the embedded default's analogue).

Both stop cleanly: `stop` is set (the CLI sets it on SIGINT/SIGTERM), the batch in hand is
finished and acknowledged, and nothing is left half-written; the queue loop first lets its
current long poll end (at most `wait_seconds`), so no received message is stranded. A queue
message is deleted only after it was applied; one that failed becomes visible again after the
visibility timeout. An outage (SQS, S3, the catalogue) is logged and waited out, never the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.aws.handler import handle, logger, metrics
from indexer.catalog import Query
from indexer.ingest.events import Change, ObjectEvent
from indexer.ingest.pipeline import Progress
from indexer.ingest.sync import Sync
from indexer.sources.base import SourceItem
from indexer.sources.files import file_uri, find_images, source_item, uri_path

BACKOFF = (1, 2, 5, 10, 30)  # seconds to wait after consecutive failures of a loop


@dataclass
class QueueStats:
    received: int = 0
    deleted: int = 0
    failed: int = 0  # left on the queue for SQS to retry (and, after maxReceiveCount, dead-letter)


class QueueWatcher:
    def __init__(self, queue_url: str, sync: Sync, sqs: Any, wait_seconds: int = 20,
                 visibility_timeout: int = 300, max_messages: int = 10) -> None:
        self.queue_url = queue_url
        self.sync = sync
        self.sqs = sqs
        self.wait_seconds = wait_seconds
        self.visibility_timeout = visibility_timeout
        self.max_messages = max_messages
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn = attrs["QueueArn"]

    def run(self, stop: threading.Event, on_batch: Callable[[QueueStats], None] | None = None) -> QueueStats:
        stats = QueueStats()
        failures = 0
        while not stop.is_set():
            try:
                messages = self.receive()
                batch = self.process(messages) if messages else None
                failures = 0
            except Exception as exc:  # an outage ends nothing: unacknowledged messages come back
                logger.exception("queue loop failed; retrying", extra={"error": str(exc)})
                stop.wait(BACKOFF[min(failures, len(BACKOFF) - 1)])
                failures += 1
                continue
            if batch:
                stats.received += batch.received
                stats.deleted += batch.deleted
                stats.failed += batch.failed
                if on_batch:
                    on_batch(batch)
        return stats

    def receive(self) -> list[dict]:
        """One long poll; the messages stay hidden from other consumers for the visibility timeout."""
        return self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.max_messages, WaitTimeSeconds=self.wait_seconds,
            VisibilityTimeout=self.visibility_timeout, AttributeNames=["All"],
        ).get("Messages", [])

    def process(self, messages: list[dict]) -> QueueStats:
        """One batch through the Lambda's own handler; delete what it applied."""
        started = time.monotonic()
        result = handle(sqs_lambda_event(messages, self.queue_arn), self.sync)
        metrics.flush_metrics()  # EMF lines on stdout: CloudWatch Logs extracts them, as from Lambda
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if time.monotonic() - started > self.visibility_timeout:
            # the messages may have been handed out again meanwhile: a harmless replay, but wasted work
            logger.warning("a batch took longer than the visibility timeout; raise --visibility-timeout",
                           extra={"seconds": round(time.monotonic() - started, 1)})
        not_deleted = []
        if done:
            not_deleted = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]).get("Failed", [])
        if not_deleted:  # applied, but SQS will hand them out again: a harmless replay
            logger.warning("applied messages not deleted", extra={"failed": not_deleted})
        return QueueStats(received=len(messages), deleted=len(done) - len(not_deleted), failed=len(failed))


def sqs_lambda_event(messages: list[dict], queue_arn: str) -> dict:
    """ReceiveMessage output in the shape Lambda's SQS event source delivers."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
        "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    } for m in messages]}


Signature = tuple[int, int]  # size, mtime in ns


class FolderWatcher:
    """Polls a folder. A new or changed file is indexed once it has looked the same for one poll
    (a file still being written is left until it settles); a removed file is removed."""

    def __init__(self, folder: Path, sync: Sync, interval: float = 1.0) -> None:
        self.folder = folder.resolve()
        self.sync = sync
        self.interval = interval
        self.indexed: dict[Path, Signature] = {}
        self.pending: dict[Path, Signature] = {}

    def run(self, stop: threading.Event, progress: Progress | None = None,
            on_removed: Callable[[str], None] | None = None) -> None:
        on_removed = on_removed or (lambda _: None)
        gone = self._forgotten()  # files removed while nobody watched
        self.sync.apply(gone, progress=progress)
        for event in gone:
            on_removed(event.uri)
        failures = 0
        while not stop.is_set():
            try:
                events = self.poll(progress)
                failures = 0
            except Exception as exc:  # the catalogue locked or full: what was not applied is applied next poll
                logger.exception("folder poll failed; retrying", extra={"error": str(exc)})
                stop.wait(BACKOFF[min(failures, len(BACKOFF) - 1)])
                failures += 1
                continue
            for event in events:
                if event.change == Change.REMOVED:
                    on_removed(event.uri)
            stop.wait(self.interval)

    def poll(self, progress: Progress | None = None) -> list[ObjectEvent]:
        seen = self._scan()
        events = [_removed(file_uri(p)) for p in self.indexed.keys() - seen.keys()]
        ready = {}
        for path, sig in seen.items():
            if self.indexed.get(path) == sig:
                continue
            if self.pending.get(path) == sig:  # unchanged since the last poll: settled
                ready[path] = sig
            self.pending[path] = sig
        events += [ObjectEvent(Change.CREATED, source_item(p)) for p in ready]
        if events:
            self.sync.apply(events, progress=progress)  # raises: nothing below runs, the next poll retries
        for path in self.indexed.keys() - seen.keys():
            del self.indexed[path]
        for path, sig in ready.items():
            self.indexed[path] = sig
            del self.pending[path]
        self.pending = {p: s for p, s in self.pending.items() if p in seen}
        return events

    def _scan(self) -> dict[Path, Signature]:
        out = {}
        for path in find_images([self.folder]):
            try:
                st = path.stat()
            except OSError:
                continue  # removed while listing: the next poll sees it gone
            out[path] = (st.st_size, st.st_mtime_ns)
        return out

    def _forgotten(self) -> list[ObjectEvent]:
        """Records under the folder whose files are gone."""
        prefix = file_uri(self.folder).rstrip("/") + "/"
        events, cursor = [], None
        while True:
            page = self.sync.catalog.search(Query(source_prefix=prefix, limit=500, cursor=cursor))
            events += [_removed(r.uri) for r in page.records if not uri_path(r.uri).exists()]
            cursor = page.next_cursor
            if not cursor:
                return events


def _removed(uri: str) -> ObjectEvent:
    return ObjectEvent(Change.REMOVED, SourceItem(uri=uri))
