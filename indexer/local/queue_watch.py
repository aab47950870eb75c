"""`pixdex watch --queue URL`: an SQS queue of bucket events, the Lambda's path without Lambda.

Each received batch goes through the Lambda's own code (indexer.aws.batch.handle). It stops
cleanly: once `stop` is set (the CLI sets it on SIGINT/SIGTERM) the current long poll ends (at most
`wait_seconds`), the batch in hand is applied and acknowledged, and nothing is left half-written
or stranded. A message is deleted only after it was applied; one that failed becomes visible
again after the visibility timeout. An outage (SQS, S3, the catalogue) is logged and waited out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from indexer.aws.batch import handle, logger, metrics
from indexer.errors import is_transient
from indexer.ingest.sync import Sync
from indexer.local.loop import back_off


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
            except Exception as exc:
                if not is_transient(exc, (BotoCoreError, ClientError)):
                    raise
                # an outage (SQS, S3, the catalogue) ends nothing: unacknowledged messages come back
                logger.exception("queue loop failed; retrying", extra={"error": str(exc)})
                failures += 1
                back_off(stop, failures)
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
