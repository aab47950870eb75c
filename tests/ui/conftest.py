"""The app's tests share a catalogue of the four test photos, labelled by the real model."""

from __future__ import annotations

import pytest

from indexer.ingest.pipeline import Pipeline
from indexer.sources.files import FileSource, find_images, source_item


@pytest.fixture
def photo_catalog(settings, labeller, catalog, photos, monkeypatch, tmp_path):
    Pipeline(settings, labeller, catalog, FileSource(settings.limits)).run(
        source_item(p) for p in find_images([photos]))
    monkeypatch.setenv("PIXDEX_CATALOG", settings.catalog)
    monkeypatch.setenv("PIXDEX_THUMBNAILS", str(tmp_path / "thumbs"))
    return settings.catalog
