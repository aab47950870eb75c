"""Writing the catalogue from images: `pixdex index PATH...` and `pixdex watch DIR | --queue URL`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from indexer.catalog import open_catalog
from indexer.cli.common import (
    ITEMS_FAILED,
    OK,
    StopOnSignal,
    device_option,
    positive_int,
    positive_int_up_to,
    printable,
    say,
)
from indexer.cli.plugins import Command
from indexer.errors import UsageError
from indexer.record import Record, Status
from indexer.settings import Settings


def _index_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    p.add_argument("--force", action="store_true", help="relabel even unchanged files")
    p.add_argument("--batch-size", type=positive_int_up_to(4096, "decoded images held at once"),
                   help="images per model batch (default 16, at most 4,096; PIXDEX_BATCH_SIZE)")
    p.add_argument("--workers", type=positive_int_up_to(256, "threads"),
                   help="decode threads (default: cores, at most 4; up to 256)")
    device_option(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _index_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"device": args.device, "batch_size": args.batch_size, "decode_workers": args.workers}


def index(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from indexer.ingest.pipeline import Pipeline
    from indexer.model.labeller import make_labeller
    from indexer.sources.base import ReadError, SourceItem
    from indexer.sources.files import FileSource, find_images, nothing_at, source_item

    missing = [str(p) for p in args.paths if nothing_at(p)]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    unlisted: list[str] = []  # folders that cannot be read: said, and the run counts as failed

    def cannot_list(folder: Path, exc: OSError) -> None:
        unlisted.append(str(folder))
        say(printable(f"pixdex: cannot read folder {folder}: {exc.strerror or exc}; its images are left out"))

    paths = list(find_images(args.paths, on_error=cannot_list))
    if not paths:
        say("pixdex: no images found under " + ", ".join(map(str, args.paths)))
        return ITEMS_FAILED if unlisted else OK
    items: dict[str, SourceItem] = {}  # by URI: a file named twice (or named and in a folder) is read once
    unreadable = []
    for p in paths:
        try:
            item = source_item(p)
        except ReadError as exc:  # a symlink loop: no record can name it
            unreadable.append((str(p), str(exc)))
            say(printable(f"FAILED {p}: {exc}"))
            continue
        items.setdefault(item.uri, item)
    labeller = make_labeller(settings.model_settings())
    with open_catalog(settings.catalog, settings) as catalog:
        pipeline = Pipeline(settings, labeller, catalog, FileSource(settings.limits))
        total = len(items) + len(unreadable)
        with tqdm(total=total, unit="img", desc="indexing", dynamic_ncols=True, disable=None) as bar:
            def progress(record: Record | None) -> None:
                bar.update()
                if record is not None and record.status == Status.FAILED:
                    bar.write(printable(f"FAILED {record.uri}: {record.error}"), file=sys.stderr)

            bar.update(len(unreadable))
            summary = pipeline.run(items.values(), force=args.force, progress=progress)
    summary.failed += len(unreadable)
    summary.failures += unreadable
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print(f"labelled {summary.labelled}, skipped {summary.skipped} unchanged, failed {summary.failed} "
              f"in {summary.seconds:.1f}s ({summary.images_per_second:.1f} images/s)")
    return ITEMS_FAILED if summary.failed or unlisted else OK


WATCH_TEXT = """\
Keep the catalogue in step as images arrive and leave. With DIR: poll the folder; a new or changed
image is indexed once it stops changing, a removed one is removed. With --queue: long-poll an SQS
queue that receives the bucket's event notifications and apply them through the Lambda's own
handler (S3 via AWS_ENDPOINT_URL or PIXDEX_S3_ENDPOINT). Ctrl-C or SIGTERM finishes the batch in
hand, then stops."""

WATCH_EPILOG = """\
A queue message is deleted only after it was applied; one that failed reappears after the visibility
timeout and, after the queue's maxReceiveCount, goes to its dead-letter queue."""


def _watch_arguments(p: argparse.ArgumentParser) -> None:
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("folder", nargs="?", type=Path, metavar="DIR", help="a folder to watch (recursively)")
    target.add_argument("--queue", metavar="URL", help="SQS queue URL receiving S3 event notifications")
    p.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="DIR: seconds between polls; a file is indexed once unchanged for one (default 1)")
    p.add_argument("--wait", type=int, default=20, choices=range(0, 21), metavar="S",
                   help="--queue: long-poll seconds, 0-20 (default 20)")
    p.add_argument("--visibility-timeout", type=positive_int, default=300, metavar="S",
                   help="--queue: seconds a received message stays hidden from other consumers (default 300)")
    device_option(p)


def watch(args: argparse.Namespace, settings: Settings) -> int:
    if args.folder is not None and not args.folder.is_dir():
        raise UsageError(f"{args.folder} is not a folder")
    wait = f" (at most {args.wait} s for the current long poll)" if args.queue else ""
    say(f"pixdex watch: watching {args.queue or args.folder} (catalogue {settings.catalog}); Ctrl-C stops")
    with StopOnSignal(lambda name: say(f"pixdex watch: {name}: stopping after the batch in hand{wait}"),
                      hard=(signal.SIGINT, signal.SIGTERM)) as stop:
        if args.queue:
            _watch_queue(args, settings, stop)
        else:
            _watch_folder(args, settings, stop)
    say("pixdex watch: stopped")
    return OK


def _watch_queue(args: argparse.Namespace, settings: Settings, stop: StopOnSignal) -> None:
    from indexer.aws.batch import build
    from indexer.local.queue_watch import QueueStats, QueueWatcher
    from indexer.sources.s3 import make_client

    watcher = QueueWatcher(args.queue, build(settings), make_client(settings, "sqs"), wait_seconds=args.wait,
                           visibility_timeout=args.visibility_timeout)

    def on_batch(b: QueueStats) -> None:
        say(f"{b.received} messages: {b.deleted} applied, {b.failed} left for retry")

    watcher.run(stop.event, on_batch)


def _watch_folder(args: argparse.Namespace, settings: Settings, stop: StopOnSignal) -> None:
    from indexer.ingest.sync import Sync
    from indexer.local.folder_watch import FolderWatcher
    from indexer.sources.files import FileSource

    watcher = FolderWatcher(args.folder, Sync.from_settings(settings, FileSource(settings.limits)),
                            interval=args.interval)
    watcher.run(stop.event, progress=_print_record, on_removed=lambda uri: say(f"removed {uri}"))


def _print_record(record: Record | None) -> None:
    if record is not None:
        say(f"{'FAILED' if record.status == Status.FAILED else 'labelled'} {record.uri}: {record.label_summary(3)}")


INDEX = Command("index", "label and index image files and folders", _index_arguments, index, settings=_index_settings,
                description="Label image files and folders (recursively) and write them to the catalogue. Files "
                            "unchanged since they were indexed with the same model are skipped.")
WATCH = Command("watch", "index a folder or an SQS queue of bucket events as changes arrive", _watch_arguments, watch,
                settings=lambda args: {"device": args.device}, description=WATCH_TEXT, epilog=WATCH_EPILOG,
                verbatim=True)
COMMANDS = [INDEX, WATCH]
