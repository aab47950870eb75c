"""The indexer Lambda's work, without Lambda: bucket events in SQS batches -> `Sync`.

`indexer.aws.handler.lambda_handler` (the function's entry point) calls `handle()` here, and so
does `pixdex watch --queue` (indexer.local.queue_watch): both take the same path.

Production wiring is S3 -> SQS -> Lambda with `ReportBatchItemFailures`: each SQS message is one
item of a Powertools `BatchProcessor`; a message that raises (a transient S3 or catalogue failure,
a body that is no bucket event) is reported back, retried by SQS, and dead-lettered after the
queue's maxReceiveCount. A broken image is no failure here: it becomes a FAILED record.
Direct S3 notifications and EventBridge events are accepted too (they raise to be retried).
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from indexer.ingest.events import ObjectEvent, parse, parse_body
from indexer.ingest.sync import Sync
from indexer.settings import Settings
from indexer.sources.s3 import S3Source

logger = Logger(service="pixdex-indexer")
metrics = Metrics(namespace="pixdex", service="pixdex-indexer")
tracer = Tracer(service="pixdex-indexer")
# every message failed: report them all (as ReportBatchItemFailures expects) rather than raise
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def build(settings: Settings) -> Sync:
    """Model, S3 client and catalogue, loaded before the first event is timed."""
    return Sync.from_settings(settings, S3Source(settings))


@tracer.capture_method
def apply(events: list[ObjectEvent], sync: Sync) -> None:
    if not events:
        logger.info("no object to change (a test event, or an event type pixdex does not act on)")
        return
    summary = sync.apply(events)
    metrics.add_metric(name="ImagesLabelled", unit=MetricUnit.Count, value=summary.labelled)
    metrics.add_metric(name="ImagesFailed", unit=MetricUnit.Count, value=summary.failed)
    metrics.add_metric(name="ImagesRemoved", unit=MetricUnit.Count, value=summary.removed)
    if summary.labelled + summary.failed:
        metrics.add_metric(name="LabelLatency", unit=MetricUnit.Milliseconds, value=summary.seconds * 1000)
    for uri, error in summary.failures:
        logger.warning("image failed", extra={"uri": uri, "error": error})
    logger.info("events applied", extra={"events": [f"{e.name} {e.uri}" for e in events], **summary.as_dict()})


def record_handler(record: SQSRecord, sync: Sync) -> None:
    logger.set_correlation_id(record.message_id)
    metrics.add_metric(name="MessagesReceived", unit=MetricUnit.Count, value=1)
    apply(parse_body(record.body), sync)


def handle(event: dict[str, Any], sync: Sync, context: LambdaContext | None = None) -> dict:
    """One Lambda event (an SQS batch, a direct S3 notification or an EventBridge event) applied."""
    records = event.get("Records")
    if isinstance(records, list) and records and records[0].get("eventSource") == "aws:sqs":
        return process_partial_response(event=event, record_handler=functools.partial(record_handler, sync=sync),
                                        processor=processor, context=context)
    logger.set_correlation_id(event.get("id") or event.get("detail", {}).get("request-id"))
    apply(parse(event), sync)
    return {"batchItemFailures": []}

