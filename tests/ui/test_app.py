"""The first Streamlit page, driven by streamlit.testing.v1.AppTest over a real SQLite catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from indexer.files import FileSource, find_images, source_item
from indexer.pipeline import Pipeline

APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")


@pytest.fixture
def photo_catalog(settings, labeller, catalog, photos, monkeypatch):
    Pipeline(settings, labeller, catalog, FileSource(settings.limits)).run(
        source_item(p) for p in find_images([photos]))
    monkeypatch.setenv("PIXDEX_CATALOG", settings.catalog)
    return settings.catalog


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def grid_captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if not c.value.startswith("Images ")]


def test_newest_first_grid_with_top_labels(photo_catalog):
    at = run_app()
    assert at.title[0].value == "pixdex"
    assert "Images 1–4 of 4" in [c.value for c in at.caption]
    captions = grid_captions(at)
    assert len(captions) == 4
    assert any(c.startswith("espresso") for c in captions)
    assert len(at.get("image")) == 4  # a thumbnail for every image, none "(no preview)"
    assert not [m for m in at.markdown if "no preview" in m.value]


def test_label_search_with_autocomplete_options(photo_catalog):
    at = run_app()
    box = at.multiselect(key="labels")
    assert {"cat", "coffee", "vehicle", "espresso"} <= set(box.options)
    box.select("cat").run()
    captions = grid_captions(at)
    assert len(captions) == 1 and captions[0].startswith("cat 9")


def test_min_confidence_slider_narrows(photo_catalog):
    at = run_app()
    at.multiselect(key="labels").select("vehicle").run()
    assert len(grid_captions(at)) == 1
    at.slider(key="min_conf").set_value(0.9).run()
    assert grid_captions(at) == []
    assert "No image matches" in at.info[0].value


def test_empty_catalogue_says_what_to_do(settings, monkeypatch):
    monkeypatch.setenv("PIXDEX_CATALOG", settings.catalog)
    at = run_app()
    assert "catalogue is empty" in at.info[0].value and "pixdex index" in at.info[0].value


def test_bad_catalogue_setting_is_shown(monkeypatch):
    monkeypatch.setenv("PIXDEX_CATALOG", "mysql://nowhere")
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert "Cannot open the catalogue" in at.error[0].value
