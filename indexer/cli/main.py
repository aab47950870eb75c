"""`pixdex`: index, search and inspect the catalogue. Exit codes: 0 ok, 1 some items failed, 2 bad usage."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from importlib import resources
from pathlib import Path

from indexer.catalog import Catalog, CatalogError, Query, Sort, open_catalog
from indexer.model.labeller import ModelError
from indexer.record import Record, Status
from indexer.settings import Settings

OK, ITEMS_FAILED, USAGE = 0, 1, 2
DASHBOARDS = Path(str(resources.files("indexer.data") / "dashboards.ndjson"))  # package data: works from a wheel


class UsageError(Exception):
    """Bad input from the command line; printed as `pixdex: error: ...`, exit 2."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {"catalog": args.catalog, "device": getattr(args, "device", None),
                                   "batch_size": getattr(args, "batch_size", None),
                                   "decode_workers": getattr(args, "workers", None)}.items() if v is not None}
    try:
        settings = Settings(**overrides)
        return args.func(args, settings)
    except (UsageError, CatalogError, ModelError, ValueError) as exc:
        print(f"pixdex: error: {exc}", file=sys.stderr)
        return USAGE
    except (OSError, sqlite3.Error) as exc:  # disk full, catalogue locked too long, ...
        print(f"pixdex: error: {exc}; what was written stays", file=sys.stderr)
        return ITEMS_FAILED
    except KeyboardInterrupt:
        print("pixdex: interrupted; what was written stays, run the same command again to finish", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixdex",
        description="Label images with a PyTorch classifier and search them by label.",
        epilog="The catalogue comes from --catalog or PIXDEX_CATALOG (default: a SQLite file in your data folder). "
               "Exit codes: 0 ok, 1 some items failed or were not found, 2 bad usage.",
    )
    parser.add_argument("--catalog", metavar="URL", help="sqlite:///abs/path.db (overrides PIXDEX_CATALOG)")
    # accepted after the command too: `pixdex search cat --catalog sqlite:///...`
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--catalog", metavar="URL", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    command = functools.partial(sub.add_parser, parents=[common])

    p = command("index", help="label and index image files and folders",
                       description="Label image files and folders (recursively) and write them to the catalogue. "
                                   "Files unchanged since they were indexed with the same model are skipped.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    p.add_argument("--force", action="store_true", help="relabel even unchanged files")
    p.add_argument("--batch-size", type=positive_int, help="images per model batch (default 16, PIXDEX_BATCH_SIZE)")
    p.add_argument("--workers", type=positive_int, help="decode threads (default: cores, at most 4)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (PIXDEX_DEVICE)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_index)

    p = command("search", help="find images by label",
                       description="Find images by label. Every positional LABEL must match; with none, every "
                                   "record is listed, newest first. Labels include parent concepts "
                                   "(cat, dog, vehicle, food, ...) and match case-insensitively.")
    p.add_argument("labels", nargs="*", metavar="LABEL", help="labels the image must all have")
    p.add_argument("--any", action="append", default=[], metavar="LABEL", help="at least one of these (repeatable)")
    p.add_argument("--not", dest="none", action="append", default=[], metavar="LABEL",
                   help="none of these (repeatable)")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="X",
                   help="0..1, applies to each matched label (default 0)")
    p.add_argument("--text", help="a word prefix of a label name, e.g. 'espr'")
    p.add_argument("--status", choices=[s.value for s in Status])
    p.add_argument("--source", metavar="PREFIX", help="URI prefix, e.g. file:///home/me/photos/")
    p.add_argument("--since", type=datetime.fromisoformat, metavar="DATE", help="indexed on or after (ISO date)")
    p.add_argument("--until", type=datetime.fromisoformat, metavar="DATE", help="indexed before (ISO date)")
    p.add_argument("--sort", choices=[s.value for s in Sort], default=Sort.DATE.value)
    p.add_argument("--limit", type=positive_int, default=20, help="records per page (default 20)")
    p.add_argument("--cursor", help="the next-page cursor printed by the previous page")
    add_json(p)
    p.set_defaults(func=cmd_search)

    p = command("labels", help="every label with its image count")
    p.add_argument("--limit", type=positive_int, default=50, help="how many labels (default 50)")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="X")
    add_json(p)
    p.set_defaults(func=cmd_labels)

    p = command("show", help="one record: labels, metadata, status")
    p.add_argument("ref", metavar="ID|URI|PATH")
    add_json(p)
    p.set_defaults(func=cmd_show)

    p = command("similar", help="images that look alike (cosine over embeddings)")
    p.add_argument("ref", metavar="ID|URI|PATH")
    p.add_argument("-k", type=positive_int, default=10, help="how many (default 10)")
    add_json(p)
    p.set_defaults(func=cmd_similar)

    p = command("delete", help="remove records from the catalogue (the files stay)")
    p.add_argument("refs", nargs="+", metavar="ID|URI|PATH")
    p.set_defaults(func=cmd_delete)

    p = command("watch", help="index a folder or an SQS queue of bucket events as changes arrive",
                description="Keep the catalogue in step as images arrive and leave. With DIR: poll the folder; "
                            "a new or changed image is indexed once it stops changing, a removed one is removed. "
                            "With --queue: long-poll an SQS queue that receives the bucket's event notifications "
                            "and apply them through the Lambda's own handler (S3 via AWS_ENDPOINT_URL or "
                            "PIXDEX_S3_ENDPOINT). Ctrl-C or SIGTERM finishes the batch in hand, then stops.",
                epilog="A queue message is deleted only after it was applied; one that failed reappears after "
                       "the visibility timeout and, after the queue's maxReceiveCount, goes to its dead-letter queue.")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("folder", nargs="?", type=Path, metavar="DIR", help="a folder to watch (recursively)")
    target.add_argument("--queue", metavar="URL", help="SQS queue URL receiving S3 event notifications")
    p.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="DIR: seconds between polls; a file is indexed once unchanged for one (default 1)")
    p.add_argument("--wait", type=int, default=20, choices=range(0, 21), metavar="S",
                   help="--queue: long-poll seconds, 0-20 (default 20)")
    p.add_argument("--visibility-timeout", type=positive_int, default=300, metavar="S",
                   help="--queue: seconds a received message stays hidden from other consumers (default 300)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (PIXDEX_DEVICE)")
    p.set_defaults(func=cmd_watch)

    p = command("reindex", help="OpenSearch: rebuild the index with the current mapping, swap the alias",
                description="Copy every record into a new OpenSearch index created with this version's mapping, "
                            "then move the alias (PIXDEX_INDEX) to it in one atomic step: searches never see a "
                            "missing or half-filled index. The old index is kept; delete it once satisfied.")
    p.set_defaults(func=cmd_reindex)

    p = command("dashboards", help="OpenSearch Dashboards: import pixdex's index pattern, charts and dashboard",
                description="Import the bundled saved objects (the index pattern on the alias, four "
                            "visualisations, the 'pixdex overview' dashboard) through the Dashboards saved-objects "
                            "API, replacing earlier copies. Basic auth from PIXDEX_OPENSEARCH__USER/PASSWORD.")
    dash = p.add_subparsers(title="actions", required=True, metavar="ACTION")
    d = dash.add_parser("import", help="import the saved objects", parents=[common])
    d.add_argument("url", metavar="URL", help="OpenSearch Dashboards, e.g. http://localhost:5601")
    d.add_argument("--file", type=Path, default=DASHBOARDS, help="saved objects NDJSON (default: the bundled set)")
    d.set_defaults(func=cmd_dashboards_import)

    p = command("api", help="serve the image API over HTTP on this machine (the local stack)",
                description="Serve indexer.aws.api (what API Gateway + Lambda serve in AWS) at http://HOST:PORT. "
                            "Images submitted go to PIXDEX_UPLOAD_BUCKET; run `pixdex watch --queue` on the "
                            "bucket's event queue to label them.")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=cmd_api)

    p = command("stack", help="the event-driven path on this machine: S3+SQS, OpenSearch, indexer, API",
                description="Start moto's S3 and SQS (the bucket notifying the queue), osmem-server as OpenSearch, "
                            "the queue watcher as the indexer Lambda and the image API, print their endpoints, and "
                            "run until Ctrl-C or SIGTERM. Needs the dev extra (make stack installs it).")
    p.add_argument("--bucket", default="pixdex-photos", help="the bucket to create (default pixdex-photos)")
    p.add_argument("--s3-port", type=int, default=5000, help="moto's S3/SQS port (default 5000; 0: any free)")
    p.add_argument("--api-port", type=int, default=8080, help="the API's port (default 8080; 0: any free)")
    p.set_defaults(func=cmd_stack)

    p = command("selftest", help="one image through the whole system: submit, labelled, found, deleted",
                description="Send the bundled espresso photo to the image API, wait for the bucket's event path "
                            "to label it, find it by search, delete it and check it is gone; then send it again "
                            "as a signed upload straight to the bucket (POST /uploads), wait for its labels and "
                            "delete it. Exit 0 when every step passed, 1 naming the step that did not.")
    p.add_argument("--api", required=True, metavar="URL", help="the API: http://127.0.0.1:8080 or the stage URL")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S", help="seconds to wait for the label")
    p.add_argument("--token", help="Authorization header value (a Cognito ID token for a deployed API)")
    p.set_defaults(func=cmd_selftest)

    p = command("ui", help="start the Streamlit app")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=cmd_ui)
    add_plugin_commands(sub, [common])
    return parser


def add_plugin_commands(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Commands from installed packages (`pixdex backfill`), through the `pixdex.commands` entry
    point group: each names a `register(subparsers, parents)`. indexer imports none of them."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="pixdex.commands"), key=lambda ep: ep.name):
        try:
            register = ep.load()
        except ModuleNotFoundError as exc:  # declared but not shipped (the Lambda image has indexer only)
            if exc.name != ep.module.split(".")[0]:
                raise  # a real import error inside the command's package
            continue
        register(sub, parents)


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON array of records (README: 'The record')")
    p.add_argument("--embedding", action="store_true", help="with --json: include the embedding vectors")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def find_record(catalog: Catalog, ref: str) -> Record | None:
    """By id or URI, else by the path of an indexed file (which may no longer exist)."""
    from indexer.sources.files import file_uri

    record = catalog.get(ref)
    if record is None and "://" not in ref:
        record = catalog.get(file_uri(Path(ref)))
    return record


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from indexer.ingest.pipeline import Pipeline
    from indexer.model.labeller import make_labeller
    from indexer.sources.files import FileSource, find_images, source_item

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    paths = list(find_images(args.paths))
    if not paths:
        print("pixdex: no images found under " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return OK
    labeller = make_labeller(settings.model_settings())
    with open_catalog(settings.catalog, settings) as catalog:
        pipeline = Pipeline(settings, labeller, catalog, FileSource(settings.limits))
        with tqdm(total=len(paths), unit="img", desc="indexing", dynamic_ncols=True, disable=None) as bar:
            def progress(record: Record | None) -> None:
                bar.update()
                if record is not None and record.status == Status.FAILED:
                    bar.write(f"FAILED {record.uri}: {record.error}", file=sys.stderr)

            summary = pipeline.run((source_item(p) for p in paths), force=args.force, progress=progress)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print(f"labelled {summary.labelled}, skipped {summary.skipped} unchanged, failed {summary.failed} "
              f"in {summary.seconds:.1f}s ({summary.images_per_second:.1f} images/s)")
    return ITEMS_FAILED if summary.failed else OK


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    query = Query(all_of=tuple(args.labels), any_of=tuple(args.any), none_of=tuple(args.none),
                  min_confidence=args.min_confidence, text=args.text,
                  status=Status(args.status) if args.status else None,
                  source_prefix=args.source, since=args.since, until=args.until, sort=Sort(args.sort),
                  limit=args.limit, cursor=args.cursor)
    with open_catalog(settings.catalog, settings) as catalog:
        page = catalog.search(query)
    if args.json:
        print_json(page.records, args.embedding)
    else:
        for r in page.records:
            print(record_line(r, query.matched_labels))
    shown = f"{len(page.records)} of {page.total} image{'s' if page.total != 1 else ''}"
    more = f"; next page: --cursor {page.next_cursor}" if page.next_cursor else ""
    print(shown + more, file=sys.stderr)  # stderr, so --json output stays a plain array
    return OK


def cmd_labels(args: argparse.Namespace, settings: Settings) -> int:
    with open_catalog(settings.catalog, settings) as catalog:
        facets = catalog.facets(Query(min_confidence=args.min_confidence), size=args.limit)
    if args.json:
        print(json.dumps([{"label": n, "count": c} for n, c in facets], indent=2))
    else:
        for name, count in facets:
            print(f"{count:>7}  {name}")
    return OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with open_catalog(settings.catalog, settings) as catalog:
        record = find_record(catalog, args.ref)
    if record is None:
        return not_found(args.ref)
    if args.json:
        print_json([record], args.embedding)
        return OK
    print(f"{record.uri}\n  id        {record.id}\n  status    {record.status}")
    if record.error:
        print(f"  error     {record.error}")
    if record.width:
        print(f"  image     {record.width}x{record.height} {record.format}, {record.size} bytes")
    print(f"  model     {record.model_id}\n  indexed   {record.indexed_at:%Y-%m-%d %H:%M:%S} UTC")
    for lb in sorted(record.labels, key=lambda lb: -lb.confidence):
        parents = f"  ({', '.join(lb.parents)})" if lb.parents else ""
        print(f"  {lb.confidence:6.1%}  {lb.name} [{lb.source}]{parents}")
    return OK


def cmd_similar(args: argparse.Namespace, settings: Settings) -> int:
    with open_catalog(settings.catalog, settings) as catalog:
        record = find_record(catalog, args.ref)
        if record is None:
            return not_found(args.ref)
        hits = catalog.similar(record.id, k=args.k)
    if args.json:
        print(json.dumps([{**r.to_json(args.embedding), "similarity": round(s, 4)} for r, s in hits], indent=2))
    else:
        for r, s in hits:
            print(f"{s:6.3f}  {record_line(r, ())}")
    return OK


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    failed = 0
    with open_catalog(settings.catalog, settings) as catalog:
        for ref in args.refs:
            record = find_record(catalog, ref)
            if record is None:
                not_found(ref)
                failed += 1
                continue
            catalog.delete([record.id])
            print(f"deleted {record.uri}")
    return ITEMS_FAILED if failed else OK


def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from indexer.local.watch import QueueStats

    if args.folder is not None and not args.folder.is_dir():
        raise UsageError(f"{args.folder} is not a folder")
    watcher = _queue_watcher(args, settings) if args.queue else _folder_watcher(args, settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: now
        stop.set()
        wait = f" (at most {args.wait} s for the current long poll)" if args.queue else ""
        print(f"pixdex watch: {signal.Signals(signum).name}: stopping after the batch in hand{wait}",
              file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    where = args.queue or args.folder
    print(f"pixdex watch: watching {where} (catalogue {settings.catalog}); Ctrl-C stops", file=sys.stderr)
    if args.queue:
        def on_batch(b: QueueStats) -> None:
            print(f"{b.received} messages: {b.deleted} applied, {b.failed} left for retry", file=sys.stderr,
                  flush=True)

        watcher.run(stop, on_batch)
    else:
        watcher.run(stop, progress=_print_record,
                    on_removed=lambda uri: print(f"removed {uri}", file=sys.stderr, flush=True))
    print("pixdex watch: stopped", file=sys.stderr)
    return OK


def _queue_watcher(args: argparse.Namespace, settings: Settings):
    from indexer.aws.handler import build
    from indexer.local.watch import QueueWatcher
    from indexer.sources.s3 import make_client

    sqs = make_client(settings, "sqs")
    return QueueWatcher(args.queue, build(settings), sqs, wait_seconds=args.wait,
                        visibility_timeout=args.visibility_timeout)


def _folder_watcher(args: argparse.Namespace, settings: Settings):
    from indexer.ingest.sync import Sync
    from indexer.local.watch import FolderWatcher
    from indexer.sources.files import FileSource

    return FolderWatcher(args.folder, Sync.from_settings(settings, FileSource(settings.limits)),
                         interval=args.interval)


def _print_record(record: Record | None) -> None:
    if record is not None:
        print(f"{'FAILED' if record.status == Status.FAILED else 'labelled'} {record.uri}: "
              f"{record.label_summary(3)}", file=sys.stderr, flush=True)


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.catalog.opensearch import OpenSearchCatalog

    with open_catalog(settings.catalog, settings) as catalog:
        if not isinstance(catalog, OpenSearchCatalog):
            raise UsageError(f"reindex is for an OpenSearch catalogue; {settings.catalog} is not one")
        old, new = catalog.reindex()
    print(f"alias {settings.index}: {old} -> {new} (the old index is kept)")
    return OK


def cmd_dashboards_import(args: argparse.Namespace, settings: Settings) -> int:
    import requests

    if not args.file.is_file():
        raise UsageError(f"no saved objects file {args.file}")
    url = args.url.rstrip("/") + "/api/saved_objects/_import"
    try:
        with args.file.open("rb") as f:
            resp = requests.post(url, params={"overwrite": "true"}, headers={"osd-xsrf": "true"},
                                 auth=settings.opensearch.basic_auth(), verify=settings.opensearch.tls_verify(),
                                 files={"file": (args.file.name, f, "application/ndjson")}, timeout=60)
    except requests.RequestException as exc:
        raise UsageError(f"cannot reach OpenSearch Dashboards at {args.url}: {exc}") from None
    body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
    if resp.status_code != 200 or not body.get("success"):
        errors = body.get("errors") or body.get("message") or resp.text[:300]
        print(f"pixdex: error: Dashboards refused the import (HTTP {resp.status_code}): {errors}", file=sys.stderr)
        return ITEMS_FAILED
    print(f"imported {body.get('successCount', 0)} saved objects into {args.url}; open the 'pixdex overview' dashboard")
    return OK


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.aws.api import Deps
    from indexer.local.api_server import server
    from indexer.sources.s3 import make_client

    if not settings.upload_bucket:
        raise UsageError("set PIXDEX_UPLOAD_BUCKET=s3://bucket/prefix/: where the API stores submitted images")
    deps = Deps(settings, open_catalog(settings.catalog, settings), make_client(settings))
    httpd = server(args.port, deps, args.host)
    print(f"pixdex api: http://{args.host}:{httpd.server_address[1]} (catalogue {settings.catalog}, "
          f"uploads {settings.upload_bucket})", file=sys.stderr, flush=True)
    import contextlib
    import signal

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        httpd.serve_forever()
    httpd.server_close()
    return OK


def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from indexer.local.stack import CREDENTIALS, Endpoints, StackError, start

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

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

    try:
        start(settings, args.bucket, args.s3_port, args.api_port, stop, ready)
    except StackError as exc:
        raise UsageError(str(exc)) from None
    print("pixdex stack: stopped", flush=True)
    return OK


def cmd_selftest(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.local.selftest import SelftestFailed, run

    try:
        run(args.api, args.timeout, args.token, say=lambda line: print(line, flush=True))
    except SelftestFailed as exc:
        print(f"FAILED {exc}", flush=True)
        return ITEMS_FAILED
    print("selftest passed", flush=True)
    return OK


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    import importlib.util

    if importlib.util.find_spec("streamlit") is None:
        raise UsageError("the app needs Streamlit: pip install 'pixdex[ui]' (make demo installs it)")
    app = importlib.util.find_spec("ui.app").origin
    env = {**os.environ, "PIXDEX_CATALOG": settings.catalog}
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
    if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        cmd += ["--server.headless", "true"]
    print(f"pixdex ui: http://localhost:{args.port}  (catalogue {settings.catalog})", file=sys.stderr)
    return subprocess.call(cmd, env=env)


def record_line(r: Record, focus: tuple[str, ...]) -> str:
    return f"{r.id}  {r.label_summary(3, focus):<48}  {r.uri}"


def not_found(ref: str) -> int:
    """Say so; the exit code for a missing item."""
    print(f"pixdex: no image {ref!r} in the catalogue", file=sys.stderr)
    return ITEMS_FAILED


def print_json(records: list[Record], with_embedding: bool) -> None:
    print(json.dumps([r.to_json(with_embedding) for r in records], indent=2, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
