"""What each SOURCE lists, what it skips and why, and how a bad SOURCE is refused."""

from __future__ import annotations

import json

import pytest

from backfill.inventory import InventoryError, Manifest
from backfill.shard import Shard
from backfill.sources import FolderListing, NotASource, Skipped, Unreadable, UriFileListing, open_listing
from indexer.settings import Settings
from indexer.sources.base import SourceItem
from indexer.sources.uris import UriSource


def entries(listing) -> list[tuple[str, str | None]]:
    return [(e.uri.rstrip("/").rsplit("/", 1)[-1], e.reason if isinstance(e, Skipped) else None)
            for e in listing.items()]


def test_a_folder_lists_files_in_order_and_skips_hidden_ones(tmp_path):
    for rel in ["b.jpg", "a/c.png", ".thumbs/x.jpg", ".DS_Store", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    listing = FolderListing(tmp_path)
    assert listing.total == 5
    assert entries(listing) == [(".thumbs", "hidden folder"), (".DS_Store", "hidden file"), ("b.jpg", None),
                                ("notes.txt", None), ("c.png", None)]  # extensions are the Lister's job
    item = next(e for e in listing.items() if isinstance(e, SourceItem))
    assert item.uri.startswith("file:///") and item.size == 1 and item.last_modified is not None


def test_a_uri_file_takes_s3_file_uris_and_paths_and_names_bad_lines(tmp_path):
    photo = tmp_path / "p q.jpg"
    photo.write_bytes(b"x")
    uris = tmp_path / "uris.txt"
    uris.write_text(f"# exported\n\ns3://b/k 1.jpg\n{photo.as_uri()}\n{photo}\ns3://b/\nftp://x/y.jpg\n")
    listing = UriFileListing(uris)
    assert listing.total == 5
    got = list(listing.items())
    assert got[0] == SourceItem(uri="s3://b/k 1.jpg", bucket="b", key="k 1.jpg")
    assert got[1].uri == photo.resolve().as_uri()
    assert [(e.uri, e.reason) for e in got[2:]] == [
        (f"line 5: {photo} (as line 4)", "repeats an earlier line"),  # the same file, as a path this time
        ("line 6: s3://b/", "not an s3://bucket/key URI"),
        ("line 7: ftp://x/y.jpg", "not an s3://, file:// URI or absolute path")]


def symlink_loop(folder):
    (folder / "loop1.jpg").symlink_to("loop2.jpg")
    (folder / "loop2.jpg").symlink_to("loop1.jpg")
    return folder / "loop1.jpg"


def test_a_uri_file_names_each_line_it_cannot_read_and_lists_the_rest(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    loop = symlink_loop(tmp_path)
    uris = tmp_path / "uris.txt"
    uris.write_bytes(b"\n".join([
        str(loop).encode(), str(photo).encode(), b"/photos/caf\xe9.jpg", b"file://otherhost" + str(photo).encode(),
        b"file://localhost" + str(photo).encode(), b"file:///x/%00.jpg", b"s3://b/k.jpg", b"s3://b/k.jpg", b""]))
    listing = UriFileListing(uris)  # reading the file raises nothing: each line is judged alone
    assert listing.total == 8
    got = [(e.uri, e.reason if not isinstance(e, SourceItem) else None, type(e).__name__) for e in listing.items()]
    assert got == [
        (f"line 1: {loop}", "symlink loop", "Unreadable"),
        (photo.resolve().as_uri(), None, "SourceItem"),
        ("line 3: /photos/caf\\xe9.jpg", "not UTF-8", "Unreadable"),
        (f"line 4: file://otherhost{photo}", "file URI of another host", "Unreadable"),
        (f"line 5: file://localhost{photo} (as line 2)", "repeats an earlier line", "Skipped"),
        ("line 6: file:///x/%00.jpg", "not a path", "Unreadable"),
        ("s3://b/k.jpg", None, "SourceItem"),
        ("line 8: s3://b/k.jpg (as line 7)", "repeats an earlier line", "Skipped"),
    ]
    errors = {e.reason: e.error for e in listing.items() if isinstance(e, Unreadable)}
    assert errors["not UTF-8"] == "byte 0xe9 at position 12 of the line: invalid continuation byte"
    assert "'otherhost' is another machine" in errors["file URI of another host"]


def test_a_folder_names_a_symlink_loop_as_unreadable(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    symlink_loop(tmp_path)
    got = [(e.uri.rsplit("/", 1)[-1], e.reason if isinstance(e, Unreadable) else None)
           for e in FolderListing(tmp_path).items()]
    assert got == [("a.jpg", None), ("loop1.jpg", "symlink loop"), ("loop2.jpg", "symlink loop")]


@pytest.mark.parametrize(("spec", "message"), [
    ("/no/such/place", "no such folder or file"),
    ("https://example.com/photos", "expected s3://bucket/prefix"),
    ("s3://", "expected s3://bucket/prefix"),
])
def test_a_bad_source_is_refused_naming_it(spec, message):
    with pytest.raises(NotASource, match=message) as err:
        open_listing(spec, UriSource(Settings()), Shard())
    assert spec in str(err.value)


def test_an_image_is_not_a_uri_file(photos):
    with pytest.raises(NotASource, match="is an image: give its folder"):
        open_listing(str(photos / "cat.png"), UriSource(Settings()), Shard())


def manifest(**changes) -> bytes:
    doc = {"sourceBucket": "photos", "destinationBucket": "arn:aws:s3:::inv", "fileFormat": "CSV",
           "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
           "files": [{"key": "data/1.csv.gz", "size": 10, "MD5checksum": "abc"}]}
    return json.dumps({**doc, **changes}).encode()


def test_a_manifest_is_read_as_s3_writes_it():
    m = Manifest.parse("s3://inv/manifest.json", manifest())
    assert (m.source_bucket, m.file_format) == ("photos", "CSV")
    assert m.columns == ("Bucket", "Key", "Size", "LastModifiedDate", "ETag")
    assert m.files[0].bucket == "inv" and m.files[0].md5 == "abc"


@pytest.mark.parametrize(("raw", "message"), [
    (b"{not json", "is not an S3 Inventory manifest.json"),
    (manifest(fileFormat="ORC"), "ORC inventories are not supported"),
    (manifest(fileSchema="Bucket, Size"), "has no Key column"),
    (json.dumps({"files": []}).encode(), "is not an S3 Inventory manifest.json"),
])
def test_a_bad_manifest_is_refused_naming_it(raw, message):
    with pytest.raises(InventoryError, match=message) as err:
        Manifest.parse("s3://inv/x/manifest.json", raw)
    assert "s3://inv/x/manifest.json" in str(err.value)
