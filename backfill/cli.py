"""`pixdex backfill SOURCE`: a `Command` (indexer.cli.plugins) that joins the `pixdex` CLI through
the `pixdex.commands` entry point (indexer never imports backfill), and `python -m backfill` in
the container."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from backfill.job import Options
from backfill.report import Report
from backfill.shard import Shard
from backfill.stages import Relabel
from indexer.cli.common import ITEMS_FAILED as FAILED
from indexer.cli.common import OK, StopOnSignal, device_option, non_negative_int, positive_int, printable, say
from indexer.cli.plugins import Command
from indexer.errors import SourceError
from indexer.images import EXTENSIONS
from indexer.settings import Settings

DESCRIPTION = """\
Label every image under SOURCE and write it to the catalogue, as fast as the machine allows.
SOURCE is s3://bucket/prefix (a bucket listing), the s3:// URI of an S3 Inventory manifest.json
(CSV, or Parquet with pyarrow), a local folder, or a text file of URIs (s3://, file:// or absolute
paths), one per line.

Images already in the catalogue with the same bytes (etag) and the same model are skipped, so a
run that was killed, at any moment, is resumed by running it again. SIGTERM (a spot reclaim) or
Ctrl-C stops reading, writes what is labelled, and exits 0 with the summary. A final JSON summary
goes to stdout (and to --report); progress goes to stderr: a live bar on a terminal, a log line
every --log-interval seconds otherwise."""

EPILOG = """\
exit codes: 0 done (or stopped by SIGTERM), 1 more items failed than --max-failure-rate allows or
the catalogue refused writes, 2 bad usage (SOURCE, options).
AWS Batch array jobs: each child takes shard AWS_BATCH_JOB_ARRAY_INDEX+1 of PIXDEX_SHARDS unless
--shard is given (see infra/batch/)."""


@dataclass(frozen=True)
class Invocation:
    """`pixdex backfill`'s options: SOURCE, the run's own options (backfill.job.Options, but for the
    decode workers, which come from the settings), the settings it overrides, and the report's fate."""

    source: str
    job: Options
    report: str | None = None
    max_failure_rate: float = 0.05
    quiet: bool = False
    batch_size: int | None = None
    decode_workers: int | None = None
    device: str | None = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE",
                   help="s3://bucket/prefix, s3://.../manifest.json, a folder, or a URI file")
    what = p.add_argument_group("what to label")
    what.add_argument("--shard", type=_shard, metavar="I/N",
                      help="this worker's share: shard I of N, 1-based (default: from AWS Batch, else 1/1)")
    what.add_argument("--limit", type=positive_int, metavar="N", help="label at most N images, then stop")
    relabel = what.add_mutually_exclusive_group()
    relabel.add_argument("--relabel", action="store_true", help="label everything again (no skip check)")
    relabel.add_argument("--relabel-model-older", action="store_true",
                         help="only images already in the catalogue whose model_id is not the current model's")
    what.add_argument("--extensions", default=",".join(sorted(EXTENSIONS)), metavar="LIST",
                      help="comma-separated file extensions to take, or '*' for every key (default: image types)")
    what.add_argument("--dry-run", action="store_true", help="list and skip-check only; print the counts")
    speed = p.add_argument_group("speed")
    speed.add_argument("--batch-size", type=positive_int, metavar="N",
                       help="images per model batch (default 16 on CPU, 128 on CUDA; PIXDEX_BATCH_SIZE)")
    speed.add_argument("--fetch-workers", type=positive_int, default=16, metavar="N",
                       help="parallel reads (default 16)")
    speed.add_argument("--decode-workers", type=positive_int, metavar="N",
                       help="parallel decoders (default: CPU cores, at most 4; PIXDEX_DECODE_WORKERS)")
    speed.add_argument("--max-reads-per-second", type=float, metavar="R", help="cap on source reads per second")
    speed.add_argument("--retries", type=non_negative_int, default=4, metavar="N",
                       help="retries per image when the store fails (5xx, throttling, timeouts; default 4)")
    device_option(speed)
    out = p.add_argument_group("output")
    out.add_argument("--report", metavar="PATH", help="also write the JSON summary here (a path or s3://bucket/key)")
    out.add_argument("--max-failure-rate", type=float, default=0.05, metavar="X",
                     help="exit 1 when more than this share of attempted images failed (default 0.05)")
    out.add_argument("--log-interval", type=float, default=30.0, metavar="S",
                     help="seconds between progress lines when stderr is not a terminal (default 30)")
    out.add_argument("--quiet", action="store_true", help="no progress output")


def options(args: argparse.Namespace) -> Invocation:
    extensions = None if args.extensions.strip() == "*" else frozenset(
        e.strip().lower() if e.strip().startswith(".") else f".{e.strip().lower()}"
        for e in args.extensions.split(",") if e.strip())
    job = Options(
        shard=args.shard or Shard.from_env(), dry_run=args.dry_run, limit=args.limit,
        fetch_workers=args.fetch_workers, max_reads_per_second=args.max_reads_per_second, retries=args.retries,
        extensions=extensions, log_interval=args.log_interval,
        relabel=Relabel.ALL if args.relabel else Relabel.MODEL_OLDER if args.relabel_model_older else Relabel.CHANGED,
    )
    return Invocation(args.source, job, args.report, args.max_failure_rate, args.quiet, args.batch_size,
                      args.decode_workers, args.device)


def overrides(inv: Invocation) -> dict[str, Any]:
    return {"batch_size": inv.batch_size, "decode_workers": inv.decode_workers, "device": inv.device}


def backfill(inv: Invocation, settings: Settings) -> int:
    from backfill.job import run
    from indexer.model.labeller import on_cuda

    if inv.batch_size is None and "PIXDEX_BATCH_SIZE" not in os.environ and on_cuda(settings.device):
        settings = settings.model_copy(update={"batch_size": 128})
    job = replace(inv.job, decode_workers=settings.decode_workers)

    def on_stop(name: str) -> None:
        say(f"pixdex backfill: {name}: no new reads; writing what is labelled, then exiting")

    say(f"pixdex backfill: {inv.source} -> {settings.catalog} (shard {job.shard})")
    with StopOnSignal(on_stop) as stop:
        try:
            report = run(inv.source, settings, job, stop.event, progress=not inv.quiet)
        except SourceError as exc:  # a store (SOURCE's bucket) failed before any work: nothing written
            say(f"pixdex: error: {exc}")
            return FAILED
    report.stopped_by = stop.signal_name
    return _finish(report, inv, settings)


COMMAND = Command("backfill", "label a whole bucket, inventory, folder or URI list", add_arguments, backfill,
                  options=options, settings=overrides, description=DESCRIPTION, epilog=EPILOG, verbatim=True)


def _finish(report: Report, inv: Invocation, settings: Settings) -> int:
    text = report.to_json()
    sys.stdout.write(text)
    sys.stdout.flush()
    if inv.report:
        _write_report(text, inv.report, settings)
    verb = "would label" if report.dry_run else "labelled"
    count = report.todo if report.dry_run else report.labelled
    print(f"pixdex backfill: {verb} {count}; {report.line()}", file=sys.stderr)
    if report.error:
        print(f"pixdex backfill: stopped by an error: {printable(report.error)}; what was written stays, run again to "
              f"finish", file=sys.stderr)
        return FAILED
    if report.failure_rate > inv.max_failure_rate:
        print(f"pixdex backfill: {report.failure_rate:.1%} of attempted images failed, over --max-failure-rate "
              f"{inv.max_failure_rate:.1%}: see 'failures' and 'examples' in the summary", file=sys.stderr)
        return FAILED
    return OK


def _write_report(text: str, target: str, settings: Settings) -> None:
    if target.startswith("s3://"):
        from indexer.sources.s3 import make_client, split_s3_uri

        bucket, key = split_s3_uri(target)
        try:
            make_client(settings).put_object(Bucket=bucket, Key=key, Body=text.encode(),
                                             ContentType="application/json")
        except Exception as exc:  # the summary is on stdout already: say so, do not lose the exit code
            print(f"pixdex backfill: could not write the report to {printable(target)}: {printable(exc)}",
                  file=sys.stderr)
    else:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _shard(text: str) -> Shard:
    from backfill.shard import ShardError

    try:
        return Shard.parse(text)
    except ShardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
