"""`pixdex duplicates` on copies made from the test photos, labelled by the real model."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from indexer.catalog import open_catalog
from indexer.cli.main import main
from indexer.ingest.pipeline import Pipeline
from indexer.sources.files import FileSource, find_images, source_item


@pytest.fixture
def copies(settings, labeller, photos, tmp_path) -> Path:
    """The four test photos; the coffee photo resized to half, re-encoded at quality 60 and
    mirrored; the cat photo again under another name (the same bytes). All indexed."""
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    coffee = Image.open(photos / "coffee.jpg").convert("RGB")
    coffee.resize((coffee.width // 2, coffee.height // 2), Image.Resampling.LANCZOS).save(
        folder / "coffee small.jpg", quality=90)
    coffee.save(folder / "coffee q60.jpg", quality=60)
    ImageOps.mirror(coffee).save(folder / "coffee mirrored.jpg", quality=90)
    shutil.copy(photos / "cat.png", folder / "cat again.png")
    with open_catalog(settings.catalog) as cat:
        summary = Pipeline(settings, labeller, cat, FileSource(settings.limits)).run(
            source_item(p) for p in find_images([folder]))
    assert summary.labelled == 8
    return folder


def run(settings, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["duplicates", "--catalog", settings.catalog, *args])
    out, err = capsys.readouterr()
    return code, out, err


def files(group: dict) -> list[str]:
    return sorted(r["uri"].rsplit("/", 1)[-1] for r in group["records"])


def test_copies_are_one_group_and_different_photos_none(settings, copies, capsys):
    code, out, _ = run(settings, capsys, "--json")
    assert code == 0
    found = json.loads(out)
    assert (found["records"], found["threshold"], found["without_content_hash"]) == (8, 0.9, 0)
    [exact] = found["exact"]
    assert files(exact) == ["cat%20again.png", "cat.png"]
    assert exact["content_hash"] == hashlib.sha256((copies / "cat.png").read_bytes()).hexdigest()
    [near] = found["near"]  # the rocket, the cameraman and the cat are no copies of anything else
    assert files(near) == ["coffee%20mirrored.jpg", "coffee%20q60.jpg", "coffee%20small.jpg", "coffee.jpg"]
    assert 0.9 <= near["similarity"] == min(r["similarity"] for r in near["records"]) < 1
    assert near["records"][0]["similarity"] == 1.0  # the group's first, what the others are compared with
    assert set(near["records"][0]) == {"id", "uri", "similarity", "width", "height", "size"}

    code, out, _ = run(settings, capsys)
    assert code == 0 and "exact copies (the same bytes): 1 group, 2 records" in out
    assert "near copies (cosine 0.9 or more): 1 group, 4 records" in out and "cat%20again.png" in out

    code, out, _ = run(settings, capsys, "--exact-only", "--json")
    assert len(json.loads(out)["exact"]) == 1 and json.loads(out)["near"] == []


def test_nothing_found_and_bad_thresholds_say_so(settings, labeller, photos, capsys):
    with open_catalog(settings.catalog) as cat:
        Pipeline(settings, labeller, cat, FileSource(settings.limits)).run(
            source_item(p) for p in find_images([photos]))
    code, out, _ = run(settings, capsys)
    assert code == 0
    assert out.strip() == ("no copies among 4 records: no two have the same bytes, "
                           "nor near copies at cosine 0.9 or more")
    for bad, why in (("2", "a cosine from 0.5 to 1, not 2"), ("abc", "not a number: 'abc'")):
        with pytest.raises(SystemExit) as exit_:
            run(settings, capsys, "--threshold", bad)
        assert exit_.value.code == 2 and why in capsys.readouterr().err


def test_exact_only_json_has_no_threshold(settings, capsys):
    """--exact-only compares bytes only: no cosine applies, so the JSON says null, not 0.9."""
    from indexer.record import Record, Status

    with open_catalog(settings.catalog) as cat:
        cat.upsert_many([Record(uri=f"file:///p/{n}.jpg", status=Status.LABELED, content_hash="ab" * 32)
                         for n in ("a", "b")])
    code, out, _ = run(settings, capsys, "--exact-only", "--json")
    found = json.loads(out)
    assert code == 0 and found["threshold"] is None and len(found["exact"]) == 1
    code, out, _ = run(settings, capsys, "--json")
    assert code == 0 and json.loads(out)["threshold"] == 0.9


def test_one_record_is_one_record(settings, capsys):
    from indexer.record import Record, Status

    with open_catalog(settings.catalog) as cat:
        cat.upsert_many([Record(uri="file:///p/a.jpg", status=Status.LABELED, content_hash="ab" * 32)])
    code, out, _ = run(settings, capsys, "--exact-only")
    assert code == 0 and out.strip() == "no copies among 1 record: no two have the same bytes"
    code, out, _ = run(settings, capsys)
    assert out.strip() == "no copies among 1 record: no two have the same bytes, nor near copies at cosine 0.9 or more"
