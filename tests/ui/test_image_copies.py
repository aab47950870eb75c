"""The image page's "Copies of this photo": the same bytes, and resized, re-encoded or mirrored copies."""

from __future__ import annotations

import shutil

from apptest import image_links, run_app
from PIL import Image, ImageOps

from indexer.catalog import Query, open_catalog
from indexer.ingest.pipeline import Pipeline
from indexer.sources.files import FileSource, find_images, source_item


def test_the_image_page_shows_copies_of_the_photo(photo_catalog, settings, labeller, photos, tmp_path):
    folder = tmp_path / "copies"
    folder.mkdir()
    coffee = Image.open(photos / "coffee.jpg").convert("RGB")
    ImageOps.mirror(coffee).save(folder / "coffee mirrored.jpg", quality=90)
    coffee.save(folder / "coffee q60.jpg", quality=60)
    shutil.copy(photos / "coffee.jpg", folder / "coffee again.jpg")
    with open_catalog(photo_catalog) as cat:
        Pipeline(settings, labeller, cat, FileSource(settings.limits)).run(
            source_item(p) for p in find_images([folder]))
        [original] = [r for r in cat.search(Query(limit=10)).records if r.uri.endswith("/coffee.jpg")]
        [rocket] = [r for r in cat.search(Query(limit=10)).records if r.uri.endswith("/rocket.jpg")]
    at = run_app("image.py", id=original.id)
    headers = [h.value for h in at.subheader]
    assert headers.index("Copies of this photo") < headers.index("Similar images")
    assert "1 with the same bytes, 2 resized, re-encoded or mirrored (90% alike or more)" in [
        c.value for c in at.caption]
    links = image_links(at)
    assert links[0].startswith("100% alike · espresso")  # the same bytes first
    assert all(int(label.split("%")[0]) >= 90 for label in links[:3])
    assert len(links) >= 3 and not any("espresso" in label for label in links[3:])  # copies not listed twice

    at = run_app("image.py", id=rocket.id)  # a photo without copies says so
    assert any(c.value.startswith("None: no other image has the same bytes") for c in at.caption)
