"""The app's tests share a catalogue of the four test photos, labelled by the real model."""

from __future__ import annotations

import pytest

from indexer.files import FileSource, find_images, source_item
from indexer.pipeline import Pipeline


@pytest.fixture
def photo_catalog(settings, labeller, catalog, photos, monkeypatch, tmp_path):
    Pipeline(settings, labeller, catalog, FileSource(settings.limits)).run(
        source_item(p) for p in find_images([photos]))
    monkeypatch.setenv("PIXDEX_CATALOG", settings.catalog)
    monkeypatch.setenv("PIXDEX_THUMBNAILS", str(tmp_path / "thumbs"))
    return settings.catalog
