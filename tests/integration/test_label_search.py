"""What a person types finds what it says, on real photos, through the CLI, on both backends:
people from the face detector, scenes from the reviewed vocabulary and the scene heads, black and white from the
pixels, plurals and quoted multi-word labels. The photos: tests/data/{scenes,people,photos}."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
PIXDEX = str(Path(sys.executable).with_name("pixdex"))
PEOPLE = {"jesper.jpg", "jesper_2.jpg", "anne_helene.jpg", "qt-logo.jpg", "bar55.jpg", "bar55_2.jpg",
          "portrait-bw.jpg"}
NOBODY = {"cat.png", "coffee.jpg", "rocket.jpg", "beach.jpg", "mountain.jpg", "butterfly.jpg"}
# word -> (must be found, must not be found)
EXPECTED = {
    "person": (PEOPLE, NOBODY),
    "people": ({"qt-logo.jpg", "bar55.jpg", "bar55_2.jpg"}, NOBODY | {"jesper_2.jpg", "portrait-bw.jpg"}),
    "group": ({"qt-logo.jpg", "bar55.jpg"}, NOBODY | {"jesper_2.jpg", "bar55_2.jpg"}),
    "portrait": ({"jesper_2.jpg", "portrait-bw.jpg"}, NOBODY | {"qt-logo.jpg", "bar55.jpg"}),
    "beach": ({"beach.jpg"}, {"mountain.jpg", "butterfly.jpg", "cat.png", "coffee.jpg", "qt-logo.jpg"}),
    "Beaches": ({"beach.jpg"}, {"mountain.jpg", "cat.png"}),
    "mountain": ({"mountain.jpg"}, {"beach.jpg", "butterfly.jpg", "cat.png", "coffee.jpg", "bar55.jpg"}),
    "butterflies": ({"butterfly.jpg"}, {"beach.jpg", "mountain.jpg", "cat.png"} | PEOPLE),
    # the scene heads (indexer/model/scenes.py): a people photo in a bar is indoors, a beach under a big sky
    "indoors": ({"bar55.jpg"}, {"beach.jpg", "mountain.jpg", "butterfly.jpg", "rocket.jpg"}),
    "skies": ({"beach.jpg"}, {"cat.png", "coffee.jpg", "bar55.jpg", "jesper.jpg"}),
    "black and white": ({"portrait-bw.jpg", "cameraman.jpg"}, {"beach.jpg", "butterfly.jpg", "cat.png", "coffee.jpg"}),
    "cats": ({"cat.png"}, {"coffee.jpg", "butterfly.jpg"} | PEOPLE),
    # the query language (indexer.query_language): OR, -word, NOT, filler words
    "cat OR butterfly": ({"cat.png", "butterfly.jpg"}, {"coffee.jpg", "beach.jpg"} | PEOPLE),
    "people -group": ({"bar55_2.jpg"}, NOBODY | {"qt-logo.jpg", "bar55.jpg"}),
    "black and white NOT portrait": ({"cameraman.jpg"}, {"portrait-bw.jpg", "cat.png"}),
    "photos of beaches": ({"beach.jpg"}, {"mountain.jpg", "cat.png"}),
    # what the photos say of themselves (EXIF: the KPhotoAlbum photos keep theirs)
    "taken:2005": ({"jesper.jpg", "jesper_2.jpg", "anne_helene.jpg"}, {"bar55.jpg", "qt-logo.jpg"} | NOBODY),
    'person camera:"OLYMPUS OPTICAL CO.,LTD C40Z,D40Z"': ({"bar55.jpg", "bar55_2.jpg"}, {"jesper.jpg"} | NOBODY),
    "taken:2005-12 portrait": ({"jesper_2.jpg"}, {"anne_helene.jpg", "bar55.jpg"} | NOBODY),
    "person no:date": ({"qt-logo.jpg", "portrait-bw.jpg"}, {"jesper.jpg", "bar55.jpg"} | NOBODY),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("labels") / "photos"
    root.mkdir()
    for sub in ("scenes", "people", "photos"):
        for f in (DATA / sub).iterdir():
            if f.suffix in (".jpg", ".png"):
                shutil.copy(f, root / f.name)
    return root


def found(env: dict, word: str) -> set[str]:
    out = subprocess.run([PIXDEX, "search", word, "--json", "--limit", "50"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return {r["uri"].rsplit("/", 1)[-1] for r in json.loads(out.stdout)}


def index(env: dict, folder: Path) -> None:
    out = subprocess.run([PIXDEX, "index", str(folder)], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "failed 0" in out.stdout, out.stdout + out.stderr


def check(env: dict) -> None:
    for word, (wanted, unwanted) in EXPECTED.items():
        got = found(env, word)
        assert wanted <= got, (word, sorted(wanted - got))
        assert not unwanted & got, (word, sorted(unwanted & got))
    typo = subprocess.run([PIXDEX, "search", "buterfly"], env=env, capture_output=True, text=True, timeout=120)
    assert typo.returncode == 0 and "did you mean `butterfly`?" in typo.stderr, typo.stderr


@pytest.fixture(scope="module")
def sqlite_env(folder) -> dict:
    env = {**os.environ, "PIXDEX_CATALOG": f"sqlite:///{folder.parent / 'c.db'}", "PIXDEX_DEVICE": "cpu"}
    index(env, folder)
    return env


def test_on_sqlite(sqlite_env):
    check(sqlite_env)


def test_on_opensearch(folder, osmem_clone):
    env = {**os.environ, "PIXDEX_CATALOG": osmem_clone.url, "PIXDEX_DEVICE": "cpu"}
    index(env, folder)
    check(env)


def test_faces_are_on_the_record(folder, sqlite_env):
    shown = subprocess.run([PIXDEX, "show", str(folder / "qt-logo.jpg"), "--json"], env=sqlite_env,
                           capture_output=True, text=True, timeout=60)
    [record] = json.loads(shown.stdout)
    assert 2 <= record["face_count"] <= 4  # three men in front (tests/data/people/SOURCES.md)
    assert all(0 <= v <= 1 for face in record["faces"] for v in face["box"])
    assert {"person", "people", "group"} <= set(record["label_names"])
    shown = subprocess.run([PIXDEX, "show", str(folder / "jesper.jpg")], env=sqlite_env, capture_output=True,
                           text=True, timeout=60).stdout
    assert "taken     2005-12-29 23:45:22 UTC" in shown and "Canon EOS DIGITAL REBEL XT, 44 mm" in shown
