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


def test_photos_per_month_taken_and_how_many_have_no_date(photo_catalog):
    from dataclasses import replace
    from datetime import UTC, datetime

    from indexer.catalog import Query, open_catalog

    with open_catalog(photo_catalog) as cat:
        records = sorted((cat.get(r.id) for r in cat.search(Query()).records), key=lambda r: r.uri)
        days = [datetime(2019, 3, 10, tzinfo=UTC), datetime(2019, 3, 2, tzinfo=UTC), datetime(2021, 1, 5, tzinfo=UTC)]
        cat.upsert_many([replace(r, taken_at=day) for r, day in zip(records, days, strict=False)])
    at = run_app("stats.py")
    assert "Photos per month taken" in [h.value for h in at.subheader]
    assert len(at.get("vega_lite_chart")) == 4
    assert ("3 photos with a date taken, March 2019 to January 2021; 1 photo without one "
            "(no:date status:labeled finds them).") in [c.value for c in at.caption]


def test_without_dates_taken_the_stats_say_so(photo_catalog):
    at = run_app("stats.py")
    assert "No photo has a date taken (EXIF): 4 photos without one." in [c.value for c in at.caption]
