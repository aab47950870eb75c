"""The `pixdex` console script, run as a user runs it: real process, real catalogue, real photos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

PIXDEX = str(Path(sys.executable).with_name("pixdex"))


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, request):
    """A catalogue of the four photos and one broken file, indexed once for the module."""
    from tests.conftest import PHOTOS

    root = tmp_path_factory.mktemp("cli")
    folder = root / "my photos"  # a space in the path, as people have
    shutil.copytree(PHOTOS, folder)
    (folder / "notes.jpg").write_text("not a picture")
    env = {**os.environ, "PIXDEX_CATALOG": f"sqlite:///{root / 'catalog.db'}", "PIXDEX_DEVICE": "cpu"}
    first = subprocess.run([PIXDEX, "index", str(folder)], env=env, capture_output=True, text=True)
    return folder, env, first


def pixdex(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([PIXDEX, *args], env=env, capture_output=True, text=True, timeout=120)


def test_index_reports_and_exits_1_when_some_failed(indexed):
    folder, env, first = indexed
    assert first.returncode == 1, first.stderr
    assert "labelled 4, skipped 0 unchanged, failed 1" in first.stdout
    assert "FAILED" in first.stderr and "notes.jpg" in first.stderr and "not an image" in first.stderr
    again = pixdex(env, "index", str(folder))
    assert again.returncode == 0 and "labelled 0, skipped 5 unchanged, failed 0" in again.stdout


@pytest.mark.parametrize(("label", "photo"), [("cat", "cat.png"), ("coffee", "coffee.jpg"),
                                               ("sky", "rocket.jpg"), ("Tripod", "cameraman.jpg")])
def test_search_finds_by_label(indexed, label, photo):
    _, env, _ = indexed
    out = pixdex(env, "search", label, "--json")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    assert [Path(r["key"] or r["uri"]).name for r in records] == [photo]
    r = records[0]
    for field in ("id", "uri", "bucket", "key", "version_id", "etag", "size", "content_type", "last_modified",
                  "width", "height", "format", "status", "error", "labels", "label_names", "model_id",
                  "sequencer", "indexed_at", "reviewed_at", "reviewed_by"):
        assert field in r
    assert r["status"] == "LABELED" and label.lower() in [n.lower() for n in r["label_names"]]
    assert r["uri"].startswith("file:///") and "my%20photos" in r["uri"]


def test_search_semantics_from_the_cli(indexed):
    _, env, _ = indexed
    everything = json.loads(pixdex(env, "search", "--json").stdout)
    assert len(everything) == 5 and everything == sorted(everything, key=lambda r: r["indexed_at"], reverse=True)
    cat_or_coffee = json.loads(pixdex(env, "search", "--any", "cat", "--any", "coffee", "--json").stdout)
    assert len(cat_or_coffee) == 2
    no_cats = json.loads(pixdex(env, "search", "animal", "--not", "cat", "--json").stdout)
    assert no_cats == []
    strict = json.loads(pixdex(env, "search", "cat", "--min-confidence", "0.99", "--json").stdout)
    assert strict == []
    failed = json.loads(pixdex(env, "search", "--status", "FAILED", "--json").stdout)
    assert [Path(r["uri"]).name for r in failed] == ["notes.jpg"] and "not an image" in failed[0]["error"]
    # the query language as typed at a shell: -word is a word (NOT word), not an unknown option
    typed = json.loads(pixdex(env, "search", "cat", "OR", "espresso", "-cat", "--json").stdout)
    assert [Path(r["uri"]).name for r in typed] == ["coffee.jpg"]
    hat = pixdex(env, "search", "cat", "-hat")  # not -h followed by "at"
    assert hat.returncode == 0 and "usage:" not in hat.stdout + hat.stderr
    assert "usage: pixdex search" in pixdex(env, "search", "-h").stdout


def test_search_pages_with_a_cursor(indexed):
    _, env, _ = indexed
    first = pixdex(env, "search", "--limit", "3")
    assert first.returncode == 0 and "3 of 5 images; next page: --cursor " in first.stderr
    cursor = first.stderr.rsplit("--cursor ", 1)[1].strip()
    as_json = pixdex(env, "search", "--limit", "3", "--json")
    assert len(json.loads(as_json.stdout)) == 3 and f"--cursor {cursor}" in as_json.stderr
    second = pixdex(env, "search", "--limit", "3", "--cursor", cursor)
    assert "2 of 5 images" in second.stderr and "next page" not in second.stderr
    ids = [line.split()[0] for line in (first.stdout + second.stdout).splitlines()]
    assert len(set(ids)) == 5


def test_show_similar_labels_delete(indexed):
    folder, env, _ = indexed
    show = pixdex(env, "show", str(folder / "cat.png"))
    assert show.returncode == 0 and "LABELED" in show.stdout and "Egyptian cat" in show.stdout
    assert "[property]" in show.stdout  # orientation, colours: exact, from the pixels
    shown = json.loads(pixdex(env, "show", str(folder / "cat.png"), "--json", "--embedding").stdout)[0]
    assert len(shown["embedding"]) == 1280
    similar = json.loads(pixdex(env, "similar", shown["id"], "-k", "2", "--json").stdout)
    assert len(similar) == 2 and shown["id"] not in {r["id"] for r in similar}
    labels = {x["label"]: x["count"] for x in json.loads(pixdex(env, "labels", "--json").stdout)}
    assert labels["cat"] == 1 and labels["animal"] == 1
    few = pixdex(env, "labels", "--limit", "2")
    assert len(few.stdout.splitlines()) == 2 and "there are more: --limit N" in few.stderr  # never a silent cut
    assert "there are more" not in pixdex(env, "labels", "--limit", "1000").stderr
    assert pixdex(env, "delete", shown["uri"]).returncode == 0
    assert json.loads(pixdex(env, "search", "cat", "--json").stdout) == []
    gone = pixdex(env, "show", shown["id"])
    assert gone.returncode == 1 and "no image" in gone.stderr


def test_bad_usage_exits_2_with_a_message(indexed, tmp_path):
    _, env, _ = indexed
    missing = pixdex(env, "index", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    bad_conf = pixdex(env, "search", "cat", "--min-confidence", "7")
    assert bad_conf.returncode == 2 and "min_confidence must be between 0 and 1" in bad_conf.stderr
    bad_cursor = pixdex(env, "search", "--cursor", "xyz")
    assert bad_cursor.returncode == 2 and "invalid cursor" in bad_cursor.stderr
    setting = pixdex({**env, "PIXDEX_MODEL_THREADS": "abc"}, "labels")  # pydantic's message has several lines
    assert setting.returncode == 2 and "model_threads\n  " in setting.stderr and "\\x0a" not in setting.stderr
    huge = pixdex(env, "search", "--limit", "99999999999999999999")  # more than a store answers at once
    assert huge.returncode == 2 and "a page holds at most 5,000 records" in huge.stderr
    bad_catalog = pixdex({**env, "PIXDEX_CATALOG": "mysql://x"}, "search")
    assert bad_catalog.returncode == 2 and "PIXDEX_CATALOG=mysql://x" in bad_catalog.stderr
    assert pixdex(env, "frobnicate").returncode == 2
    zero = pixdex(env, "similar", "x", "-k", "0")
    assert zero.returncode == 2 and "must be at least 1" in zero.stderr
    for args, message in ((("labels", "--limit", "9223372036854775807"), "at most 10,000 (labels listed)"),
                          (("similar", "x", "-k", "10000000"), "at most 5,000"),
                          (("index", "--workers", "100000", str(tmp_path)), "at most 256 (threads)")):
        beyond = pixdex(env, *args)  # was an OverflowError from SQLite, or 100,000 threads
        assert beyond.returncode == 2 and message in beyond.stderr and "Traceback" not in beyond.stderr
    typo = tmp_path / "no-such-folder" / "catalog.db"  # a read made it, folder and all: "0 of 0 images"
    for command in (("search", "cat"), ("labels",), ("show", "x")):
        unmade = pixdex({**env, "PIXDEX_CATALOG": f"sqlite:///{typo}"}, *command)
        assert unmade.returncode == 2 and f"no catalogue at {typo}" in unmade.stderr and not typo.parent.exists()
    symbols = pixdex(env, "search", "🐱")  # was every image, as if all matched
    assert symbols.returncode == 2 and "no label `🐱`" in symbols.stderr
    for query, message in (("cat OR", "OR needs a label"), ("x" * 2000, "at most 1000 characters"),
                           (" ".join(f"w{i}" for i in range(40)), "at most 32 labels")):
        refused = pixdex(env, "search", query)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr


def test_delete_by_path_after_the_file_is_gone(tmp_path, photos):
    env = {**os.environ, "PIXDEX_CATALOG": f"sqlite:///{tmp_path / 'gone.db'}"}
    photo = tmp_path / "coffee.jpg"
    shutil.copy(photos / "coffee.jpg", photo)
    assert pixdex(env, "index", str(photo)).returncode == 0
    photo.unlink()
    assert pixdex(env, "show", str(photo)).returncode == 0
    deleted = pixdex(env, "delete", str(photo))
    assert deleted.returncode == 0 and "deleted file://" in deleted.stdout
    assert json.loads(pixdex(env, "search", "--json").stdout) == []


def test_bring_your_own_model_from_settings(tmp_path, photos):
    import torch

    from tests.unit.test_labeller import MeanColour

    model = tmp_path / "colours.pt"
    torch.jit.script(MeanColour()).save(str(model))
    (tmp_path / "colours.txt").write_text("reddish: colour\ngreenish: colour\nbluish: colour\n")
    env = {**os.environ, "PIXDEX_CATALOG": f"sqlite:///{tmp_path / 'byo.db'}", "PIXDEX_MODEL": str(model),
           "PIXDEX_MODEL_LABELS": str(tmp_path / "colours.txt"), "PIXDEX_MODEL_INPUT_SIZE": "64"}
    assert pixdex(env, "index", str(photos / "coffee.jpg")).returncode == 0
    record = json.loads(pixdex(env, "search", "colour", "--json").stdout)[0]
    assert record["model_id"].startswith("colours@") and record["labels"][0]["name"] == "reddish"


def test_catalog_flag_before_or_after_the_command(indexed):
    _, env, _ = indexed
    url = env["PIXDEX_CATALOG"]
    bare = {k: v for k, v in env.items() if k != "PIXDEX_CATALOG"}
    before = pixdex(bare, "--catalog", url, "search", "coffee", "--json")
    after = pixdex(bare, "search", "coffee", "--json", "--catalog", url)
    assert before.returncode == after.returncode == 0
    assert json.loads(before.stdout) == json.loads(after.stdout) and len(json.loads(after.stdout)) == 1


def test_a_file_name_that_is_not_utf8_is_indexed_and_shown(tmp_path, photos):
    """Any byte string the file system allows is a name: its URI round-trips to the same file."""
    folder = tmp_path / "latin1"
    folder.mkdir()
    name = os.fsencode(folder) + b"/caf\xe9.png"  # Latin-1, not UTF-8
    with open(name, "wb") as f:
        f.write((photos / "cat.png").read_bytes())
    env = {**os.environ, "PIXDEX_CATALOG": f"sqlite:///{tmp_path / 'c.db'}", "PIXDEX_DEVICE": "cpu"}
    indexed = subprocess.run([PIXDEX, "index", str(folder)], env=env, capture_output=True, text=True, timeout=120)
    assert indexed.returncode == 0 and "labelled 1, skipped 0 unchanged, failed 0" in indexed.stdout, indexed.stderr
    shown = subprocess.run([PIXDEX.encode(), b"show", name], env=env, capture_output=True, timeout=60)
    assert shown.returncode == 0 and b"LABELED" in shown.stdout and b"caf%E9.png" in shown.stdout


def test_search_by_date_taken_and_place(tmp_path):
    """--sort taken (undated last, across pages) and near:/box: from the shell, over a catalogue of
    photos with known dates and positions."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from indexer.catalog import open_catalog
    from indexer.record import Label, Record, Status

    def photo(name, taken=None, lat=None, lon=None):
        return replace(Record(uri=f"file:///trip/{name}.jpg", status=Status.LABELED, labels=[Label("tower", 0.9)]),
                       taken_at=taken, latitude=lat, longitude=lon)

    with open_catalog(f"sqlite:///{tmp_path / 'c.db'}") as cat:
        cat.upsert_many([photo("paris", datetime(2019, 5, 3, tzinfo=UTC), 48.8584, 2.2945),
                         photo("pisa", datetime(2021, 8, 1, tzinfo=UTC), 43.7230, 10.3966),
                         photo("scan")])
    env = {**os.environ, "PIXDEX_CATALOG": f"sqlite:///{tmp_path / 'c.db'}"}

    def uris(*args):
        out = pixdex(env, "search", *args, "--json")
        assert out.returncode == 0, out.stderr
        return [Path(r["uri"]).stem for r in json.loads(out.stdout)]

    assert uris("--sort", "taken") == ["pisa", "paris", "scan"]
    first = pixdex(env, "search", "--sort", "taken", "--limit", "2")
    cursor = first.stderr.rsplit("--cursor ", 1)[1].strip()
    assert uris("--sort", "taken", "--limit", "2", "--cursor", cursor) == ["scan"]
    assert uris("tower", "near:48.85,2.35,10km") == ["paris"]
    assert uris("box:40,0,50,12", "sort:taken") == ["pisa", "paris"]
    bad = pixdex(env, "search", "near:48.85,2.35")
    assert bad.returncode == 2 and "near:48.85,2.35 is not a latitude, a longitude and a radius" in bad.stderr
    assert "Traceback" not in bad.stderr


UNSAFE = ("\x1b", "\x07", "\u202e")  # ESC (clear the screen, turn it red), BEL, right-to-left override


def test_what_a_person_typed_is_quoted_back_escaped_in_errors_and_hints(tmp_path):
    from indexer.catalog import open_catalog

    env = {**os.environ, "PIXDEX_CATALOG": f"sqlite:///{tmp_path / 'c.db'}"}
    open_catalog(env["PIXDEX_CATALOG"]).close()  # an empty catalogue: a search of one that is not there is refused
    typed = "\x1b[2J\u202ekat"  # clear the screen, then right-to-left, in a search word and a path
    for argv in (["search", typed], ["search", f"taken:{typed}"], ["index", str(tmp_path / typed)]):
        done = pixdex(env, *argv)
        assert done.returncode in (0, 2), done.stderr
        assert "kat" in done.stderr and "\\x1b[2J\\u202ekat" in done.stderr  # shown escaped
        assert not {"\x1b", "\u202e"} & set(done.stderr + done.stdout)


def test_control_characters_from_exif_or_a_name_never_reach_the_terminal(tmp_path, photos):
    """A hostile photo (ESC sequences and BEL in its EXIF, an ESC and U+202E in its name) and a
    record an older pixdex wrote with them raw: the text output shows them escaped, --json as JSON."""
    from PIL import Image

    from indexer.catalog import open_catalog
    from indexer.exif import EXIF_IFD
    from indexer.record import Label, Record, Status

    folder = tmp_path / "hostile"
    folder.mkdir()
    photo = folder / "evil\x1b[31m\u202egpj.jpg"
    try:
        photo.touch()
    except OSError:
        pytest.skip("this file system refuses an ESC in a name")
    exif = Image.Exif()
    exif[271], exif[272] = "\x1b[2J\x1b[31mEVIL", "X100"
    exif.get_ifd(EXIF_IFD)[42036] = "\u202eEF50mm\x07 f/1.8".encode()
    Image.open(photos / "coffee.jpg").save(photo, "JPEG", exif=exif.tobytes(), quality=90)
    env = {**os.environ, "PIXDEX_CATALOG": f"sqlite:///{tmp_path / 'c.db'}", "PIXDEX_DEVICE": "cpu"}

    indexed = pixdex(env, "index", str(folder))
    assert indexed.returncode == 0 and "labelled 1, skipped 0 unchanged, failed 0" in indexed.stdout, indexed.stderr
    [record] = json.loads(pixdex(env, "show", str(photo), "--json").stdout)
    assert (record["camera"], record["lens"]) == ("[2J[31mEVIL X100", "EF50mm f/1.8")  # dropped when read
    shown = pixdex(env, "show", str(photo))
    assert shown.returncode == 0 and "  camera    [2J[31mEVIL X100, EF50mm f/1.8" in shown.stdout
    assert "evil%1B%5B31m%E2%80%AEgpj.jpg" in shown.stdout  # the name: a file URI is percent-encoded
    listed = pixdex(env, "search", "coffee")
    assert listed.returncode == 0 and "evil%1B" in listed.stdout
    for out in (indexed, shown, listed):
        assert not any(c in out.stdout + out.stderr for c in UNSAFE), out

    old = "file:///old/red\x1b[31m\u202egpj.jpg"  # from before: raw in the catalogue
    with open_catalog(env["PIXDEX_CATALOG"]) as cat:
        cat.upsert_many([Record(uri=old, status=Status.LABELED, labels=[Label("cat\x07", 0.9)], camera="\x1b[2JEVIL")])
    shown = pixdex(env, "show", old)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("file:///old/red\\x1b[31m\\u202egpj.jpg\n")
    assert "  camera    \\x1b[2JEVIL\n" in shown.stdout and "cat\\x07 [model]" in shown.stdout
    listed = pixdex(env, "search")
    assert listed.returncode == 0 and "red\\x1b[31m\\u202egpj.jpg" in listed.stdout and "evil%1B" in listed.stdout
    as_json = pixdex(env, "search", "--json")
    assert old in [r["uri"] for r in json.loads(as_json.stdout)]  # the same value to a program
    for out in (shown, listed, as_json):
        assert not any(c in out.stdout for c in UNSAFE), out


def _unshare_works() -> bool:
    """`unshare -r` runs a command as root of its own user namespace: files owned by another user
    are then as closed to it as to any user (the suite itself runs as root, which reads anything)."""
    try:
        return shutil.which("unshare") is not None and subprocess.run(["unshare", "-r", "true"]).returncode == 0
    except OSError:
        return False


def test_what_cannot_be_read_fails_by_itself_and_the_rest_is_indexed(tmp_path, photos):
    """Each was the end of the whole run (a PermissionError from exists(), "no such file" for a
    symlink loop) or silent (an unreadable folder: "no images found", exit 0)."""
    env = {**os.environ, "PIXDEX_CATALOG": f"sqlite:///{tmp_path / 'c.db'}", "PIXDEX_DEVICE": "cpu"}
    shutil.copy(photos / "coffee.jpg", tmp_path / "ok.jpg")
    (tmp_path / "loop1.jpg").symlink_to("loop2.jpg")
    (tmp_path / "loop2.jpg").symlink_to("loop1.jpg")
    tiff = Image.open(photos / "coffee.jpg")
    tiff.save(tmp_path / "cut.tif", compression="tiff_lzw")
    data = (tmp_path / "cut.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[:len(data) // 2])
    run = pixdex(env, "index", str(tmp_path / "loop1.jpg"), str(tmp_path / "cut.tif"), str(tmp_path / "ok.jpg"))
    assert run.returncode == 1 and "labelled 1, skipped 0 unchanged, failed 2" in run.stdout, run.stderr
    assert f"FAILED {tmp_path / 'loop1.jpg'}: cannot resolve" in run.stderr and "a symlink loop" in run.stderr
    assert "TIFF image whose header is truncated or corrupt" in run.stderr
    assert "Warning" not in run.stderr and "Traceback" not in run.stderr  # Pillow's UserWarning showed
    if not _unshare_works():
        pytest.skip("unshare -r is not available: the unreadable-folder half needs it")
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(photos / "rocket.jpg", locked / "r.jpg")
    os.chown(locked, 12345, 12345)
    locked.chmod(0)
    try:
        as_user = subprocess.run(["unshare", "-r", PIXDEX, "index", "--force", str(locked / "r.jpg"),
                                  str(tmp_path / "ok.jpg"), str(tmp_path / "ok.jpg"), str(locked)], env=env,
                                 capture_output=True, text=True, timeout=120)
    finally:
        locked.chmod(0o755)
    assert as_user.returncode == 1, as_user.stderr
    assert "labelled 1, skipped 0 unchanged, failed 1" in as_user.stdout  # ok.jpg once, though named twice
    assert f"cannot read {locked / 'r.jpg'}: Permission denied" in as_user.stderr
    assert f"pixdex: cannot read folder {locked}: Permission denied" in as_user.stderr
    assert "Traceback" not in as_user.stderr


def test_ctrl_c_at_any_moment_of_start_up_prints_no_traceback(indexed):
    """Ctrl-C while Python was still importing (botocore, pydantic...) printed a traceback."""
    import signal
    import time

    _, env, _ = indexed
    for delay in (0.05, 0.15, 0.25, 0.35, 0.45, 0.6):
        proc = subprocess.Popen([PIXDEX, "search", "cat"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err)
        # interrupted (130), done before the signal (0), or stopped by it while exiting (-2)
        assert proc.returncode in (130, 0, -signal.SIGINT), (delay, proc.returncode, err)
