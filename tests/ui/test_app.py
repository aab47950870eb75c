"""The app's pages, driven by streamlit.testing.v1.AppTest over a real SQLite catalogue of the
test photos: what a person sees, what the URL holds, and the empty and error states."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from apptest import APP, image_links, run_app
from streamlit.testing.v1 import AppTest

from indexer.catalog import Query, open_catalog


def test_home_shows_the_newest_images_with_their_labels(photo_catalog):
    at = run_app()
    assert at.title[0].value == "pixdex"
    assert "Images 1–4 of 4" in [c.value for c in at.caption]
    links = image_links(at)
    assert len(links) == 4 and any(link.startswith("espresso") for link in links)
    assert len(at.get("image")) == 4  # a thumbnail for every image, none "(no preview)"


def test_a_label_search_from_the_url_and_its_facets(photo_catalog):
    at = run_app(all="cat")
    assert at.multiselect(key="all").value == ["cat"]
    [link] = image_links(at)
    assert link.startswith("cat 9")  # the label searched for comes first in the summary
    facets = [b.label for b in at.button if b.key and b.key.startswith("facet-")]
    assert "Egyptian cat · 1" in facets and not any(f.startswith("cat ·") for f in facets)


def test_clicking_a_facet_refines_the_query(photo_catalog):
    at = run_app()
    next(b for b in at.button if b.key == "facet-cat").click().run()
    assert at.multiselect(key="all").value == ["cat"]
    assert len(image_links(at)) == 1


def test_any_none_and_min_confidence(photo_catalog):
    at = run_app(any=["cat", "coffee"])
    assert len(image_links(at)) == 2
    at.multiselect(key="not").select("cat").run()
    [link] = image_links(at)
    assert "espresso" in link
    at.slider(key="min").set_value(0.99).run()
    assert image_links(at) == []
    assert "No image matches" in at.info[0].value


def test_pages_walk_forward_and_back_with_the_cursor_in_the_url(photo_catalog, tmp_path):
    with open_catalog(photo_catalog) as cat:  # 30 images: copies of the four photos
        originals = cat.search(Query()).records
        copies = []
        for n in range(26):
            r = originals[n % 4]
            path = tmp_path / f"copy{n:02d}{Path(r.uri).suffix}"
            path.write_bytes(Path(r.uri.removeprefix("file://")).read_bytes())
            copies.append(replace(r, id="", uri=path.as_uri(), indexed_at=r.indexed_at + timedelta(seconds=n + 1)))
        cat.upsert_many(copies)
    at = run_app()
    assert "Images 1–24 of 30" in [c.value for c in at.caption]
    first_page = image_links(at)
    next(b for b in at.button if b.label == "Next →").click().run()
    assert "Images 25–30 of 30" in [c.value for c in at.caption]
    assert "after" in at.query_params and len(image_links(at)) == 6
    next(b for b in at.button if b.label == "← Previous").click().run()
    assert image_links(at) == first_page and "after" not in at.query_params


def test_the_image_page_shows_labels_concepts_and_details(photo_catalog):
    with open_catalog(photo_catalog) as cat:
        [cat_record] = cat.search(Query(all_of=("cat",))).records
    at = run_app("image.py", id=cat_record.id)
    assert at.title[0].value == "cat.png"
    bars = [p.proto.text for p in at.get("progress")]
    assert any(t.startswith("**Egyptian cat**") for t in bars)
    assert any(t.startswith("**cat** 9") for t in bars)  # the concept, with its summed confidence
    details = " ".join(m.value for m in at.markdown)
    assert "451×300 px" in details and "efficientnet-lite0@" in details
    similar = image_links(at)  # the similar-images grid below the picture
    assert len(similar) == 3 and len(at.get("image")) == 4


def test_the_image_page_without_or_with_an_unknown_id(photo_catalog):
    assert "Pick an image" in run_app("image.py").info[0].value
    assert "No image 'nope'" in run_app("image.py", id="nope").warning[0].value


def test_the_labels_page_filters_and_links_to_search(photo_catalog):
    at = run_app("labels.py", q="cat")
    links = {link.label: link for link in at.get("page_link")}
    assert "cat · 1" in links and "Egyptian cat · 1" in links and "espresso · 1" not in links
    assert links["Egyptian cat · 1"].proto.query_string == "all=Egyptian+cat"


def test_empty_catalogue_says_what_to_do(settings, monkeypatch):
    monkeypatch.setenv("PIXDEX_CATALOG", settings.catalog)
    at = run_app()
    assert "catalogue is empty" in at.info[0].value and "pixdex index" in at.info[0].value


def test_bad_catalogue_setting_is_shown(monkeypatch):
    monkeypatch.setenv("PIXDEX_CATALOG", "mysql://nowhere")
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert "Cannot open the catalogue" in at.error[0].value


def test_delete_from_the_image_page(photo_catalog):
    with open_catalog(photo_catalog) as cat:
        [cat_record] = cat.search(Query(all_of=("cat",))).records
    at = run_app("image.py", id=cat_record.id)
    at.button(key="delete").click().run()
    assert not at.exception, at.exception
    with open_catalog(photo_catalog) as cat:
        assert cat.get(cat_record.id) is None and cat.search(Query()).total == 3
    assert "Images 1–3 of 3" in [c.value for c in at.caption]  # back on the search page


def test_a_scene_and_people_found_in_the_app(settings, labeller, catalog, monkeypatch, tmp_path):
    from indexer.ingest.pipeline import Pipeline
    from indexer.sources.files import FileSource, find_images, source_item

    data = Path(__file__).resolve().parents[1] / "data"
    Pipeline(settings, labeller, catalog, FileSource(settings.limits)).run(
        source_item(p) for p in find_images([data / "scenes", data / "people"]))
    monkeypatch.setenv("PIXDEX_CATALOG", settings.catalog)
    monkeypatch.setenv("PIXDEX_THUMBNAILS", str(tmp_path / "thumbs"))
    [beach] = image_links(run_app(all="beach"))
    assert beach.startswith("beach")  # the label searched for comes first on the tile
    assert len(image_links(run_app(all="people"))) >= 2
    assert len(image_links(run_app(all="black and white"))) == 1


def test_more_labels_than_a_search_takes_is_a_message_not_a_traceback(photo_catalog):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["all"] = [f"label{i}" for i in range(40)]  # a shared link, or "Select all" on a big catalogue
    at.run()
    assert not at.exception
    assert any("at most 32 labels" in e.value for e in at.error)
