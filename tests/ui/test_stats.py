"""The Stats page over the test photos plus a failure, on SQLite."""

from __future__ import annotations

from apptest import run_app


def test_counts_charts_failures_and_models(photo_catalog, settings, labeller, tmp_path):
    from indexer.catalog import open_catalog
    from indexer.ingest.pipeline import Pipeline
    from indexer.sources.files import FileSource, source_item

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo at all" * 10)
    with open_catalog(photo_catalog) as cat:
        Pipeline(settings, labeller, cat, FileSource(settings.limits)).run([source_item(broken)])
    at = run_app("stats.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Images": "5", "Labelled": "4", "Failed": "1", "Not classified": "0"}
    assert len(at.get("vega_lite_chart")) == 3  # per day, top labels, labels over time
    tables = at.dataframe
    assert "not an image" in tables[0].value["error"].iloc[0]
    assert tables[1].value["model_id"].iloc[0].startswith("efficientnet-lite0@")
