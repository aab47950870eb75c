"""Keep the catalogue in step with a bucket or folder, one batch of object events at a time.

The Lambda handler, `pixdex watch --queue` and `pixdex watch DIR` all end here, and from here in
the one pipeline. An event says *that* a key changed; what the key holds is read from the store
when the event is handled, so a late or duplicated event cannot write stale bytes:
- created: read the object and label it; if it is gone by now, remove the key;
- removed: ask the store what the key holds now; nothing: remove it (leaving a tombstone); an
  object (a previous version became current, or the key was written again): label that.
Sequencers, where the event has one, order all of this (see indexer.catalog.base.Catalog); the
tombstones of deletes older than SQS's retention are pruned, at most once an hour per Sync.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from indexer.catalog import Catalog, open_catalog
from indexer.catalog.base import is_newer
from indexer.ingest.events import Change, ObjectEvent
from indexer.ingest.pipeline import Pipeline, Progress, Summary
from indexer.model.labeller import Labeller, make_labeller
from indexer.record import record_id
from indexer.settings import Settings
from indexer.sources.base import ReadError, Source, SourceUnavailable

PRUNE_EVERY_S = 3600


class Sync:
    def __init__(self, settings: Settings, labeller: Labeller, catalog: Catalog, source: Source) -> None:
        self.catalog = catalog
        self.source = source
        self.pipeline = Pipeline(settings, labeller, catalog, source, remove_missing=True)
        self._pruned_at = 0.0  # time.monotonic() of the last prune_tombstones

    @classmethod
    def from_settings(cls, settings: Settings, source: Source) -> Sync:
        """The model (loaded now, before the first event is timed) and the catalogue the settings name."""
        labeller = make_labeller(settings.model_settings())
        labeller.load()
        return cls(settings, labeller, open_catalog(settings.catalog, settings), source)

    def apply(self, events: Sequence[ObjectEvent], progress: Progress | None = None) -> Summary:
        """Apply the events. Raises SourceUnavailable (or CatalogError) when the store or the
        catalogue failed, after applying what it could: the caller retries (replays are harmless)."""
        items, removed = [], 0
        # only a delete is checked here; a create's sequencer is checked where it is written
        applied = self.catalog.sequencers([record_id(e.uri) for e in events
                                           if e.sequencer and e.change == Change.REMOVED])
        for event in events:
            if event.change == Change.CREATED:
                items.append(event.item)
                continue
            if not is_newer(event.sequencer, applied.get(record_id(event.uri))):
                continue  # a replayed or late delete: the pipeline counts nothing for it
            try:
                current = self.source.head(event.uri)
            except ReadError:  # the store will not say (403): trust the event, the key was removed
                current = None
            if current is None:
                removed += self.catalog.delete([record_id(event.uri)], sequencer=event.sequencer)
            else:
                items.append(replace(current, sequencer=event.sequencer))
        summary = self.pipeline.run(items, progress=progress)
        summary.removed += removed
        if removed and time.monotonic() - self._pruned_at > PRUNE_EVERY_S:  # a Lambda copy lives for hours
            self._pruned_at = time.monotonic()
            self.catalog.prune_tombstones()
        if summary.deferred:
            raise SourceUnavailable("; ".join(error for _, error in summary.deferred))
        return summary
