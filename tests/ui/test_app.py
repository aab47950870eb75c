"""The app's pages, driven by streamlit.testing.v1.AppTest over a real SQLite catalogue of the
test photos: what a person sees, what the URL holds, and the empty and error states."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from apptest import APP, image_links, run_app
from streamlit.testing.v1 import AppTest

from indexer.catalog import Query, open_catalog
from indexer.record import Label


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def chips(at: AppTest) -> list[str]:
    return [b.label for b in at.button if b.key and b.key.startswith("chip-")]


def test_home_shows_the_newest_images_with_their_labels(photo_catalog):
    at = run_app()
    assert at.title[0].value == "pixdex"
    assert "Images 1–4 of 4 · newest first" in captions(at)
    links = image_links(at)
    assert len(links) == 4 and any(link.startswith("espresso") for link in links)
    tiles = [m.value for m in at.markdown if 'class="pixdex-tile"' in m.value]
    assert len(tiles) == 4 and all("data:image/jpeg;base64," in t for t in tiles)  # a thumbnail each, a link each


def test_a_search_from_the_url_shows_what_it_read_and_its_facets(photo_catalog):
    at = run_app(q="Cats")
    assert at.text_input(key="q").value == "Cats"
    assert chips(at) == ["cat  ✕"]  # what the box understood
    [link] = image_links(at)
    assert link.startswith("cat 9")  # the label searched for, first on the tile
    facets = [b.label for b in at.button if b.key and b.key.startswith("facet-side-")]
    assert "Egyptian cat · 1" in facets and not any(f.startswith("cat ·") for f in facets)
    tile = next(m.value for m in at.markdown if 'class="pixdex-tile"' in m.value)
    assert 'href="image?q=Cats&amp;id=' in tile and 'alt="cat.png: cat 9' in tile  # opens the image, says what it is


def test_typing_a_query_and_enter_searches(photo_catalog):
    at = run_app()
    at.text_input(key="q").input("cat OR espresso").run()
    assert len(image_links(at)) == 2
    assert chips(at) == ["cat (or)  ✕", "espresso (or)  ✕"]
    at.text_input(key="q").input("cat OR espresso NOT cat").run()
    [link] = image_links(at)
    assert link.startswith("espresso")
    at.text_input(key="q").input("photos of golden retrievers").run()  # several words, one label, nothing found
    assert chips(at) == ["Golden Retriever  ✕"] and image_links(at) == []
    assert "No image matches" in at.info[0].value


def test_a_chip_removes_its_label_and_a_facet_adds_one(photo_catalog):
    at = run_app(q="cat OR espresso")
    at.button(key="chip-0").click().run()
    assert at.text_input(key="q").value == "espresso" and len(image_links(at)) == 1
    at = run_app()
    next(b for b in at.button if b.key == "facet-side-cat").click().run()
    assert at.text_input(key="q").value == '"cat"' and len(image_links(at)) == 1


def test_min_confidence_from_the_filters_or_the_text(photo_catalog):
    at = run_app(q="cat")
    at.slider(key="min").set_value(0.99).run()
    assert image_links(at) == [] and "No image matches" in at.info[0].value
    assert len(image_links(run_app(q="cat min:50%"))) == 1


def test_a_word_that_is_no_label_gets_did_you_mean_and_one_click_fixes_it(photo_catalog):
    at = run_app(q="kat")
    assert image_links(at) == []
    assert at.info[0].value.startswith("No label “kat”; did you mean “cat”")  # the catalogue's own label first
    fix = next(b for b in at.button if b.key and b.key.startswith("mean-"))
    assert fix.label == "cat · 1"
    fix.click().run()
    assert at.text_input(key="q").value == '"cat"' and len(image_links(at)) == 1


def test_labels_are_suggested_while_typing(photo_catalog):
    at = run_app(q="espr")
    offered = [b.label for b in at.button if b.key and b.key.startswith("typing-")]
    assert offered == ["espresso · 1"]
    next(b for b in at.button if b.key == "typing-espresso").click().run()
    assert at.text_input(key="q").value == "espresso " and len(image_links(at)) == 1


def test_old_links_and_hostile_urls(photo_catalog):
    at = run_app(all="cat", **{"not": "dog"})  # a link from before the search box
    assert at.text_input(key="q").value == '"cat" -"dog"' and len(image_links(at)) == 1
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["all"] = [f"label{i}" for i in range(500)]  # a shared link, or 500 all= by hand
    at.run()
    assert not at.exception and any("cannot be run" in e.value for e in at.error)
    for hostile in ("x" * 10_000, " ".join(f"w{i}" for i in range(100)), "flash:on"):
        at = run_app(q=hostile)
        assert not at.exception and at.error and image_links(at) == []


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
    assert "Images 1–24 of 30 · newest first" in captions(at)
    first_page = image_links(at)
    next(b for b in at.button if b.label == "Next →").click().run()
    assert "Images 25–30 of 30 · newest first" in captions(at)
    assert "after" in at.query_params and len(image_links(at)) == 6
    next(b for b in at.button if b.label == "← Previous").click().run()
    assert image_links(at) == first_page and "after" not in at.query_params


def test_the_image_page_shows_labels_concepts_and_details(photo_catalog, tmp_path):
    with open_catalog(photo_catalog) as cat:
        [cat_record] = cat.search(Query(all_of=("cat",))).records
        copy = tmp_path / "cat copy.png"  # the same photo again: alike; the other three test photos are not
        copy.write_bytes(Path(cat_record.uri.removeprefix("file://")).read_bytes())
        cat.upsert_many([replace(cat.get(cat_record.id), id="", uri=copy.as_uri())])  # get: with its embedding
    at = run_app("image.py", id=cat_record.id)
    assert at.title[0].value == "cat.png"
    bars = [p.proto.text for p in at.get("progress")]
    assert any(t.startswith("**Egyptian cat**") for t in bars)
    assert any(t.startswith("**cat** 9") for t in bars)  # the concept, with its summed confidence
    details = " ".join(m.value for m in at.markdown)
    assert "451×300 px" in details and "efficientnet-lite0@" in details
    [similar] = image_links(at)  # the copy, with its score; espresso, rocket and cameraman are not alike
    assert similar.startswith("100% alike · Egyptian cat")
    assert len(at.get("image")) == 1  # the picture itself; the grid's thumbnails are links


def test_the_image_page_walks_the_results_it_was_opened_from(photo_catalog):
    with open_catalog(photo_catalog) as cat:
        ids = [r.id for r in cat.search(Query()).records]  # newest first, as the search page shows them
    at = run_app("image.py", id=ids[1], q="")
    nav = {b.label: b for b in at.button if b.label in ("Results", "Previous", "Next")}
    assert set(nav) == {"Results", "Previous", "Next"}
    nav["Next"].click().run()
    assert at.query_params["id"] == ids[2]
    next(b for b in at.button if b.label == "Previous").click().run()
    next(b for b in at.button if b.label == "Previous").click().run()
    assert at.query_params["id"] == ids[0]
    assert next(b for b in at.button if b.label == "Previous").disabled  # the first result


def test_the_image_page_without_or_with_an_unknown_id(photo_catalog):
    assert "Pick an image" in run_app("image.py").info[0].value
    assert "No image “nope”" in run_app("image.py", id="nope").warning[0].value


def test_the_labels_page_filters_and_links_to_search(photo_catalog):
    at = run_app("labels.py", q="cat")
    links = {link.label: link for link in at.get("page_link")}
    assert "cat · 1" in links and "Egyptian cat · 1" in links and "espresso · 1" not in links
    assert links["Egyptian cat · 1"].proto.query_string == "q=%22Egyptian+cat%22"


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
    assert "Images 1–3 of 3 · newest first" in captions(at)  # back on the search page


def test_a_scene_and_people_found_in_the_app(settings, labeller, catalog, monkeypatch, tmp_path):
    from indexer.ingest.pipeline import Pipeline
    from indexer.sources.files import FileSource, find_images, source_item

    data = Path(__file__).resolve().parents[1] / "data"
    Pipeline(settings, labeller, catalog, FileSource(settings.limits)).run(
        source_item(p) for p in find_images([data / "scenes", data / "people"]))
    monkeypatch.setenv("PIXDEX_CATALOG", settings.catalog)
    monkeypatch.setenv("PIXDEX_THUMBNAILS", str(tmp_path / "thumbs"))
    [beach] = image_links(run_app(q="beaches"))
    assert beach.startswith("beach")  # the label searched for comes first on the tile
    assert len(image_links(run_app(q="people"))) >= 2
    assert len(image_links(run_app(q="black and white"))) == 1
    [jesper] = [r for r in catalog.search(Query(limit=50)).records if r.uri.endswith("/jesper.jpg")]
    details = " ".join(m.value for m in run_app("image.py", id=jesper.id).markdown)
    assert "2005-12-29 23:45 UTC" in details and "Canon EOS DIGITAL REBEL XT, 44 mm" in details  # its EXIF


def test_text_from_a_url_or_a_label_is_shown_as_text_never_as_a_link_or_an_image(photo_catalog):
    """A query, an id or a stored label holding markdown (a link, a remote image: a tracking pixel)
    is escaped wherever the app shows it: chips, messages, buttons, titles."""
    import re

    live = re.compile(r"(?<!\\)\]\(")  # `](` not escaped: markdown would make a link or an image of it

    def shown(at: AppTest) -> list[str]:
        texts = [e.value for e in (*at.info, *at.error, *at.warning, *at.success, *at.caption, *at.markdown)
                 if 'class="pixdex-tile"' not in e.value]
        return texts + [b.label for b in at.button] + [b.proto.help for b in at.button]

    evil = "![x](http://evil.invalid/t.png) a`[click](http://evil.invalid/)`b"
    for at in (run_app(q=evil), run_app(q=f"cat source:{evil.replace(' ', '')}"),
               run_app("image.py", id=evil), run_app("image.py", id="x", q=evil)):
        assert not at.exception
        assert not [t for t in shown(at) if live.search(t) or "://" in t], shown(at)  # nor a bare autolink
    with open_catalog(photo_catalog) as cat:  # a reviewer adds a label of markdown: everyone sees it
        [cat_record] = cat.search(Query(all_of=("cat",))).records
        cat.review(cat_record.id, [Label("![x](http://evil.invalid/s.png)", 1.0)], "mallory")
    for at in (run_app(), run_app("image.py", id=cat_record.id), run_app("labels.py")):
        assert not at.exception
        texts = shown(at) + [p.proto.text for p in at.get("progress")] + [link.label for link in at.get("page_link")]
        assert not [t for t in texts if live.search(t)], texts


def dated_photos(photo_catalog: str) -> None:
    """The four test photos with dates taken: cat and espresso in March 2019, the rocket in July
    2018 (13:00 on 31 July at -12:00 is 1 August in UTC), the cameraman without one."""
    from datetime import UTC, datetime, timezone

    taken = {"cat.png": datetime(2019, 3, 10, 9, 0, tzinfo=UTC), "coffee.jpg": datetime(2019, 3, 2, 18, 0, tzinfo=UTC),
             "rocket.jpg": datetime(2018, 7, 31, 13, 0, tzinfo=timezone(timedelta(hours=-12)))}
    with open_catalog(photo_catalog) as cat:
        records = [cat.get(r.id) for r in cat.search(Query()).records]
        cat.upsert_many([replace(r, taken_at=taken.get(r.uri.rsplit("/", 1)[-1])) for r in records])


def headers(at: AppTest) -> list[str]:
    return [h.value for h in at.subheader]


def test_sorted_by_date_taken_the_results_are_a_timeline_with_a_month_jump(photo_catalog):
    dated_photos(photo_catalog)
    at = run_app(sort="taken")  # the Sort box's "taken", as the URL (and the API) spell it
    assert headers(at) == ["March 2019 · 2 photos", "August 2018 · 1 photo", "No date taken · 1 photo"]
    assert "Images 1–4 of 4 · newest taken first, undated last" in captions(at)
    tiles = [m.value.split('alt="', 1)[1].split(":", 1)[0] for m in at.markdown if 'class="pixdex-tile"' in m.value]
    assert tiles == ["cat.png", "coffee.jpg", "rocket.jpg", "cameraman.jpg"]  # newest taken first, undated last
    jump = next(s for s in at.selectbox if s.label == "Jump to")
    assert jump.options == ["All dates", "2019 · 2 photos", "\u2003March 2019 · 2 photos", "2018 · 1 photo",
                            "\u2003August 2018 · 1 photo", "No date taken · 1 photo"]
    jump.set_value("2019-03").run()
    assert at.text_input(key="q").value == "taken:2019-03" and at.query_params["q"] == "taken:2019-03"
    assert headers(at) == ["March 2019 · 2 photos"] and len(image_links(at)) == 2
    jump = next(s for s in at.selectbox if s.label == "Jump to")
    assert jump.value == "2019-03" and len(jump.options) == 6  # the other months stay a jump away
    jump.set_value("undated").run()
    assert at.text_input(key="q").value == "no:date" and headers(at) == ["No date taken · 1 photo"]


def test_the_timeline_from_the_text_keeps_labels_and_counts_the_whole_search(photo_catalog):
    dated_photos(photo_catalog)
    at = run_app(q="sort:taken -cat")  # the query language's sort, with a label filter
    assert headers(at) == ["March 2019 · 1 photo", "August 2018 · 1 photo", "No date taken · 1 photo"]
    at = run_app(q="cat")  # any other sort: one grid, no month headers
    assert headers(at) == []


def test_jumping_to_the_undated_keeps_the_other_no_filter(photo_catalog):
    dated_photos(photo_catalog)
    at = run_app(q="sort:taken no:location")
    next(s for s in at.selectbox if s.label == "Jump to").set_value("undated").run()
    assert at.text_input(key="q").value == "sort:taken no:location no:date"
    assert headers(at) == ["No date taken · 1 photo"]
    next(s for s in at.selectbox if s.label == "Jump to").set_value("2019-03").run()
    assert at.text_input(key="q").value == "sort:taken no:location taken:2019-03"
    at = run_app(q="sort:taken has:date")  # the jump decides has/no:date: never both in what it writes
    next(s for s in at.selectbox if s.label == "Jump to").set_value("undated").run()
    assert at.text_input(key="q").value == "sort:taken no:date" and headers(at) == ["No date taken · 1 photo"]


def test_a_hand_made_page_number_is_ignored(photo_catalog):
    """`page=²` passed str.isdigit and crashed int(): Streamlit's red error box."""
    for number in ("²", "-1", "9" * 30, "x"):
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params.update({"q": "cat", "after": "abc", "page": number})
        at.run()
        assert not at.exception, (number, at.exception)
        assert "invalid cursor" in " ".join(e.value for e in at.error)  # the forged cursor is what is said


def test_file_names_are_shown_as_named_not_percent_encoded(tmp_path):
    from ui.common import file_name

    assert file_name((tmp_path / "My Holiday ünï.jpg").as_uri()) == "My Holiday ünï.jpg"
    assert file_name("s3://bucket/raw%20key.jpg") == "raw%20key.jpg"  # an S3 key is what it is
