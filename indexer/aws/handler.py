"""The indexer Lambda function's entry point: `indexer.aws.handler.lambda_handler`.

Five lines on purpose: the work is `indexer.aws.batch.handle`. The model, S3 client and catalogue
are built once per container, in the init phase when the module is loaded inside Lambda, so the
first event is not timed with them. Only `indexer.aws` imports this module (an import contract in
pyproject.toml checks it): elsewhere, importing it would build a model.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from indexer.aws.batch import build, handle, logger, metrics, tracer
from indexer.ingest.sync import Sync
from indexer.settings import Settings


@functools.cache
def default_sync() -> Sync:
    """Once per container (a lazily built module-level instance), from PIXDEX_* variables."""
    return build(Settings())


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    default_sync()  # in Lambda's init phase, before the first event is waiting


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict:
    return handle(event, default_sync(), context)
