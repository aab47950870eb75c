"""`pixdex stack`: the event-driven path on one machine, for trying it and for the system test.

S3 and SQS are moto's server, with the bucket notifying the queue as production wires it;
OpenSearch is osmem-server (in memory); the indexer Lambda is the queue watcher; API Gateway + the
API Lambda are `indexer.local.api_server`. Everything stops with the command. These stand-ins come
with the `dev` extra (`make stack` installs it); with Docker, infra/local/compose.yaml runs the
real OpenSearch and MinIO instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from indexer.errors import UsageError
from indexer.settings import AwsSettings, Settings

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class StackError(UsageError):
    """The local stack cannot start here (its stand-ins are not installed)."""


@dataclass
class Endpoints:
    s3: str
    bucket: str
    queue_url: str
    opensearch: str
    api: str


def event_bucket(s3: Any, sqs: Any, name: str) -> str:
    """A bucket whose creates and deletes notify a new queue `<name>-events`, as production wires
    them (infra/aws); returns the queue URL."""
    s3.create_bucket(Bucket=name)
    queue_url = sqs.create_queue(QueueName=f"{name}-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})
    return queue_url


def start(settings: Settings, bucket: str, s3_port: int, api_port: int, stop: threading.Event,
          ready: Callable[[Endpoints], None]) -> None:
    """Start everything, call `ready`, serve until `stop` is set, then stop everything."""
    try:
        from moto.server import ThreadedMotoServer
        from osmem_server import OsmemServer
    except ImportError:
        raise StackError("the local stack needs the dev extra: pip install 'pixdex[dev]' (make stack does)") from None
    import logging

    from indexer.aws.api import Deps
    from indexer.aws.batch import build
    from indexer.catalog import open_catalog
    from indexer.local.api_server import server
    from indexer.local.queue_watch import QueueWatcher
    from indexer.sources.s3 import make_client

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    s3_url = f"http://{host}:{port}"
    # the clients are told where moto is and what to sign with; the process's environment is left alone
    aws = AwsSettings(access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"], region=CREDENTIALS["AWS_DEFAULT_REGION"],
                      secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    local = settings.model_copy(update={"upload_bucket": f"s3://{bucket}/", "s3_endpoint": s3_url, "aws": aws})
    queue_url = event_bucket(make_client(local), make_client(local, "sqs"), bucket)
    opensearch = OsmemServer.start()
    try:
        local = local.model_copy(update={"catalog": opensearch.url})
        watcher = QueueWatcher(queue_url, build(local), make_client(local, "sqs"), wait_seconds=1)
        threading.Thread(target=watcher.run, args=(stop,), name="stack-watcher", daemon=True).start()
        httpd = server(api_port, Deps(local, open_catalog(local.catalog, local), make_client(local)))
        threading.Thread(target=httpd.serve_forever, name="stack-api", daemon=True).start()
        ready(Endpoints(s3_url, bucket, queue_url, opensearch.url, f"http://127.0.0.1:{httpd.server_address[1]}"))
        stop.wait()
        httpd.shutdown()
    finally:
        opensearch.process.terminate()
        moto.stop()
