"""Long-running services on this machine: `pixdex api`, `stack`, `selftest` and `ui`."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import threading

from indexer.catalog import open_catalog
from indexer.cli.common import ITEMS_FAILED, OK, StopOnSignal, say
from indexer.cli.plugins import Command
from indexer.errors import UsageError
from indexer.settings import Settings


def _api_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")


def api(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.aws.api import Deps
    from indexer.local.api_server import server
    from indexer.sources.s3 import make_client

    if not settings.upload_bucket:
        raise UsageError("set PIXDEX_UPLOAD_BUCKET=s3://bucket/prefix/: where the API stores submitted images")
    deps = Deps(settings, open_catalog(settings.catalog, settings), make_client(settings))
    httpd = server(args.port, deps, args.host)
    say(f"pixdex api: http://{args.host}:{httpd.server_address[1]} (catalogue {settings.catalog}, "
        f"uploads {settings.upload_bucket})")
    with StopOnSignal() as stop:
        serving = threading.Thread(target=httpd.serve_forever, name="api", daemon=True)
        serving.start()
        stop.event.wait()
        httpd.shutdown()
    httpd.server_close()
    return OK


def _stack_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bucket", default="pixdex-photos", help="the bucket to create (default pixdex-photos)")
    p.add_argument("--s3-port", type=int, default=5000, help="moto's S3/SQS port (default 5000; 0: any free)")
    p.add_argument("--api-port", type=int, default=8080, help="the API's port (default 8080; 0: any free)")


def stack(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.local.stack import CREDENTIALS, Endpoints, start

    def ready(e: Endpoints) -> None:
        creds = " ".join(f"{k}={v}" for k, v in CREDENTIALS.items())
        print(f"""pixdex stack: running (Ctrl-C stops)
  S3 + SQS (moto)      {e.s3}   bucket s3://{e.bucket}/ -> queue {e.queue_url}
  OpenSearch (osmem)   {e.opensearch}
  image API            {e.api}
  indexer              watching the queue
try:
  export AWS_ENDPOINT_URL={e.s3} {creds}
  aws s3 cp photo.jpg s3://{e.bucket}/          # labelled within seconds
  PIXDEX_CATALOG={e.opensearch} pixdex search cat
  pixdex selftest --api {e.api}""", flush=True)

    with StopOnSignal() as stop:
        start(settings, args.bucket, args.s3_port, args.api_port, stop.event, ready)  # StackError: a UsageError
    print("pixdex stack: stopped", flush=True)
    return OK


def _selftest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", required=True, metavar="URL", help="the API: http://127.0.0.1:8080 or the stage URL")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S", help="seconds to wait for the label")
    p.add_argument("--token", help="Authorization header value (a Cognito ID token for a deployed API)")


def selftest(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.local.selftest import SelftestFailed, run

    try:
        run(args.api, args.timeout, args.token, say=lambda line: print(line, flush=True))
    except SelftestFailed as exc:
        print(f"FAILED {exc}", flush=True)
        return ITEMS_FAILED
    print("selftest passed", flush=True)
    return OK


def _ui_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; the app has no sign-in "
                        "unless auth is configured, so give 0.0.0.0 only behind one)")
    p.add_argument("--dev", action="store_true",
                   help="show error details (tracebacks) in the browser; by default they go to this log only")


def ui(args: argparse.Namespace, settings: Settings) -> int:
    if importlib.util.find_spec("streamlit") is None or importlib.util.find_spec("ui") is None:
        raise UsageError("the app needs Streamlit: pip install 'pixdex[ui]' (make demo installs it)")
    app = importlib.util.find_spec("ui.app").origin
    env = {**os.environ, "PIXDEX_CATALOG": settings.catalog}
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
           "--server.address", args.host,
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
           # the server takes no larger upload than pixdex indexes (the Upload page states the same)
           "--server.maxUploadSize", str(max(1, settings.limits.max_bytes // 2 ** 20)),
           # no traceback on a user's screen: a generic message there, the details in this log
           "--client.showErrorDetails", "full" if args.dev else "none"]
    if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        cmd += ["--server.headless", "true"]
    say(f"pixdex ui: http://{args.host}:{args.port}  (catalogue {settings.catalog})")
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)  # noqa: S606 - Streamlit in this process: a signal to pixdex ui stops it


COMMANDS = [
    Command("api", "serve the image API over HTTP on this machine (the local stack)", _api_arguments, api,
            description="Serve indexer.aws.api (what API Gateway + Lambda serve in AWS) at http://HOST:PORT. "
                        "Images submitted go to PIXDEX_UPLOAD_BUCKET; run `pixdex watch --queue` on the bucket's "
                        "event queue to label them."),
    Command("stack", "the event-driven path on this machine: S3+SQS, OpenSearch, indexer, API", _stack_arguments,
            stack,
            description="Start moto's S3 and SQS (the bucket notifying the queue), osmem-server as OpenSearch, the "
                        "queue watcher as the indexer Lambda and the image API, print their endpoints, and run until "
                        "Ctrl-C or SIGTERM. Needs the dev extra (make stack installs it)."),
    Command("selftest", "one image through the whole system: submit, labelled, found, deleted", _selftest_arguments,
            selftest,
            description="Send the bundled espresso photo to the image API, wait for the bucket's event path to "
                        "label it, find it by search, delete it and check it is gone; then send it again as a "
                        "signed upload straight to the bucket (POST /uploads), wait for its labels and delete it. "
                        "Exit 0 when every step passed, 1 naming the step that did not."),
    Command("ui", "start the Streamlit app", _ui_arguments, ui),
]
