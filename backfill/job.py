"""One backfill run: SOURCE and options in, a Report out. Builds the stages and runs them."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from backfill.report import Progress, Report
from backfill.runner import Runner
from backfill.shard import Shard
from backfill.sources import open_listing
from backfill.stages import Decoder, Fetcher, Labelling, Lister, RateLimit, Relabel, Writer
from indexer.catalog import open_catalog
from indexer.images import EXTENSIONS
from indexer.model.labeller import make_labeller
from indexer.settings import Settings
from indexer.sources.uris import UriSource


@dataclass(frozen=True)
class Options:
    """Everything a run takes besides SOURCE and the settings (catalogue, model, device, limits)."""

    shard: Shard = field(default_factory=Shard)
    relabel: Relabel = Relabel.CHANGED
    dry_run: bool = False
    limit: int | None = None
    fetch_workers: int = 16
    decode_workers: int = max(1, os.cpu_count() or 1)
    max_reads_per_second: float | None = None
    retries: int = 4  # per item, for store failures, beyond botocore's own
    extensions: frozenset[str] | None = frozenset(EXTENSIONS)  # None: every key
    write_batch: int = 256
    log_interval: float = 30.0  # seconds between log lines when not on a terminal


def run(source: str, settings: Settings, options: Options, stop: threading.Event | None = None,
        progress: bool = True) -> Report:
    """Raises NotASource/InventoryError (SOURCE), CatalogError, ModelError before any work starts;
    an error after that ends the run and is in `report.error`."""
    stop = stop or threading.Event()
    # bulk load: no refresh per write (searchable after the index's refresh interval); the skip
    # check reads by id, which OpenSearch answers in real time, so a resumed run still skips
    settings = settings.model_copy(update={"opensearch": settings.opensearch.model_copy(update={"refresh": False})})
    reader = UriSource(settings, threads=options.fetch_workers)
    listing = open_listing(source, reader, options.shard)
    labeller = make_labeller(settings.model_settings())
    labeller.load()
    report = Report(source=listing.description, shard=str(options.shard), dry_run=options.dry_run,
                    model_id=labeller.model_id,
                    total=listing.total if options.shard.whole else None)
    if options.limit is not None:
        report.total, report.limited = options.limit, True
    with open_catalog(settings.catalog, settings) as catalog:
        lister = Lister(listing, options.shard, catalog, labeller.model_id, report, stop, options.relabel,
                        options.extensions, options.limit, options.dry_run)
        bar = Progress(report, options.log_interval) if progress else None
        try:
            if options.dry_run:
                try:
                    for _ in lister:
                        if bar:
                            bar.tick()
                except Exception as exc:  # the listing failed midway: the summary says how far it got
                    report.error = f"{type(exc).__name__}: {exc}"
                report.seconds = report.elapsed
                return report
            runner = Runner(
                lister,
                Fetcher(reader, report, stop, options.retries, RateLimit(options.max_reads_per_second),
                        seen=lister.seen),
                Decoder(settings.limits, labeller.input_size, labeller.preview_side),
                Labelling(labeller, report, lister.seen),
                Writer(catalog, report, lister.seen, options.write_batch),
                report, options.fetch_workers, options.decode_workers, settings.batch_size,
            )
            try:
                return runner.run(bar)
            except Exception as exc:  # mid-run (the catalogue refused writes...): the summary still says how far
                report.error = f"{type(exc).__name__}: {exc}"
                report.seconds = report.elapsed
                return report
        finally:
            if bar:
                bar.close()
