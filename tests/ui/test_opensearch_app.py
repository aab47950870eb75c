"""The same pages on the production backend: the OpenSearch API (osmem-server over HTTP)."""

from __future__ import annotations

import pytest
from apptest import image_links, run_app

from indexer.catalog import open_catalog
from indexer.ingest.pipeline import Pipeline
from indexer.settings import Settings
from indexer.sources.files import FileSource, find_images, source_item


@pytest.fixture
def os_catalog(osmem_clone, labeller, photos, monkeypatch, tmp_path):
    settings = Settings(catalog=osmem_clone.url, device="cpu", batch_size=4)
    with open_catalog(osmem_clone.url, settings) as cat:
        Pipeline(settings, labeller, cat, FileSource(settings.limits)).run(
            source_item(p) for p in find_images([photos]))
    monkeypatch.setenv("PIXDEX_CATALOG", osmem_clone.url)
    monkeypatch.setenv("PIXDEX_THUMBNAILS", str(tmp_path / "thumbs"))
    return osmem_clone.url



def test_search_facets_and_pages_on_opensearch(os_catalog):
    at = run_app(q="cats -espresso")
    [link] = image_links(at)
    assert link.startswith("cat 9")
    assert "Egyptian cat · 1" in [b.label for b in at.button]
    assert "Images 1–4 of 4 · newest first" in [c.value for c in run_app().caption]
    assert run_app(q="kat").info[0].value.startswith("No label “kat”; did you mean “cat”")


def test_stats_and_review_on_opensearch(os_catalog):
    at = run_app("stats.py")
    assert {m.label: m.value for m in at.metric}["Images"] == "4"
    assert run_app("review.py", below="0.7").get("page_link")  # the unsure rocket is queued
