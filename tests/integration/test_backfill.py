"""`pixdex backfill` against moto's S3 server (a real socket) and real photos: bucket listings,
S3 Inventory reports, skip and relabel rules, kill -9 and SIGTERM mid-run, shards, retries."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote_plus

import boto3
import pytest

from backfill.job import Options, run
from backfill.shard import Shard
from backfill.stages import Relabel
from indexer.catalog import Query, open_catalog
from indexer.record import Status, record_id
from tests.conftest import StandIn, http_server

PIXDEX = str(Path(sys.executable).parent / "pixdex")
TOP = {"cat.png": "cat", "coffee.jpg": "espresso", "cameraman.jpg": "tripod", "rocket.jpg": "missile"}
GOOD = {  # key -> photo; keys with spaces, '+', '%' and non-ASCII, as people name files
    "albums/cat.png": "cat.png",
    "albums/summer 2024/café+crème 100%.jpg": "coffee.jpg",
    "people/the cameraman.jpg": "cameraman.jpg",
    "rocket.jpg": "rocket.jpg",
    "copies/cat (2).png": "cat.png",
    "copies/coffee-β.jpg": "coffee.jpg",
}
BROKEN = {"broken/truncated.jpg": "truncated or corrupt", "broken/notes.jpg": "not an image",
          "broken/empty.png": "empty file"}


def put_photos(s3, bucket: str, photos: Path) -> None:
    for key, name in GOOD.items():
        s3.put_object(Bucket=bucket, Key=key, Body=(photos / name).read_bytes())
    s3.put_object(Bucket=bucket, Key="broken/truncated.jpg", Body=(photos / "coffee.jpg").read_bytes()[:20_000])
    s3.put_object(Bucket=bucket, Key="broken/notes.jpg", Body=b"shopping list: milk, eggs\n" * 20)
    s3.put_object(Bucket=bucket, Key="broken/empty.png", Body=b"")
    s3.put_object(Bucket=bucket, Key="readme.txt", Body=b"not a photo")
    s3.put_object(Bucket=bucket, Key="albums/", Body=b"")  # a console "folder"


@pytest.fixture
def s3(aws):
    return boto3.client("s3")


@pytest.fixture
def photo_bucket(s3, photos) -> str:
    name = f"photos-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    put_photos(s3, name, photos)
    return name


def snapshot(catalog_url: str) -> dict[str, tuple[str, frozenset[str] | str | None]]:
    """uri -> (status, its label names, or the error): what a person searching would see."""
    with open_catalog(catalog_url) as catalog:
        records = catalog.search(Query(limit=1000)).records
    return {r.uri: (str(r.status), frozenset(r.label_names) if r.labels else r.error) for r in records}


def backfill(source: str, catalog_url: str, **options) -> dict:
    from indexer.settings import Settings

    settings = Settings(catalog=catalog_url, device="cpu", batch_size=4, decode_workers=2)
    report = run(source, settings, Options(fetch_workers=4, **options), progress=False)
    assert report.error is None, report.error
    return report.as_dict()


def test_a_bucket_of_photos_and_broken_objects(photo_bucket, tmp_path, s3, photos):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    junk = (photos / "cat.png").read_bytes()  # hidden keys, as a folder's hidden files: were labelled
    for key in (".thumbnails/cat.png", "trip/._cat.png"):
        s3.put_object(Bucket=photo_bucket, Key=key, Body=junk)
    summary = backfill(f"s3://{photo_bucket}/", db)

    assert (summary["labelled"], summary["failed"]) == (len(GOOD), len(BROKEN))
    assert summary["skipped"] == {"extension .txt": 1, "folder marker": 1, "hidden file": 2}
    assert summary["failures"] == {reason: 1 for reason in BROKEN.values()}
    seen = snapshot(db)
    for key, photo in GOOD.items():
        status, labels = seen[f"s3://{photo_bucket}/{key}"]
        assert status == "LABELED" and TOP[photo] in labels, key
    for key, reason in BROKEN.items():
        status, error = seen[f"s3://{photo_bucket}/{key}"]
        assert status == "FAILED" and reason in error, key
    with open_catalog(db) as catalog:
        cat = catalog.get(f"s3://{photo_bucket}/albums/cat.png")
        assert cat.etag == hashlib.md5((Path(__file__).parents[1] / "data/photos/cat.png").read_bytes()).hexdigest()
        assert cat.bucket == photo_bucket and cat.key == "albums/cat.png" and cat.size == 221537
        assert cat.confidence("cat") > 0.5 and cat.embedding is not None


def test_unchanged_images_are_skipped_and_a_changed_one_is_relabelled(photo_bucket, s3, photos, tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    backfill(f"s3://{photo_bucket}/", db)

    again = backfill(f"s3://{photo_bucket}/", db)
    assert (again["labelled"], again["failed"]) == (0, 0)
    assert again["skipped"]["unchanged (same bytes, same model)"] == len(GOOD) + len(BROKEN)

    s3.put_object(Bucket=photo_bucket, Key="rocket.jpg", Body=(photos / "cat.png").read_bytes())  # new bytes
    third = backfill(f"s3://{photo_bucket}/", db)
    assert third["labelled"] == 1
    assert "cat" in snapshot(db)[f"s3://{photo_bucket}/rocket.jpg"][1]


def test_relabel_on_model_change(photo_bucket, tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    backfill(f"s3://{photo_bucket}/", db)
    older = [f"s3://{photo_bucket}/albums/cat.png", f"s3://{photo_bucket}/rocket.jpg"]
    with open_catalog(db) as catalog:  # as if an earlier model had labelled these two, before content hashes
        hashes = {u: catalog.get(u).content_hash for u in older}
        catalog.upsert_many([replace(catalog.get(u), model_id="efficientnet-lite0@0ldwe1ghts", content_hash=None)
                             for u in older])

    only_older = backfill(f"s3://{photo_bucket}/", db, relabel=Relabel.MODEL_OLDER, dry_run=True)
    assert only_older["todo"] == 2
    summary = backfill(f"s3://{photo_bucket}/", db)  # the default also relabels another model's records
    assert summary["labelled"] == 2
    with open_catalog(db) as catalog:
        assert {catalog.get(u).model_id for u in older} == {summary["model_id"]}
        assert {u: catalog.get(u).content_hash for u in older} == hashes  # relabelling fills what was missing
        assert all(len(h) == 64 for h in hashes.values())
    assert backfill(f"s3://{photo_bucket}/", db, relabel=Relabel.MODEL_OLDER)["labelled"] == 0
    forced = backfill(f"s3://{photo_bucket}/", db, relabel=Relabel.ALL)
    assert forced["labelled"] + forced["failed"] == len(GOOD) + len(BROKEN)


# -- S3 Inventory ---------------------------------------------------------------------------------

SCHEMA = ["Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ETag",
          "StorageClass"]


def write_inventory(s3, source: str, files: int = 2, fmt: str = "CSV", extra_rows: list[list[str]] = (),
                    checksum: bool = True) -> str:
    """An inventory report laid out the way S3 writes it: data files under `data/`, then
    `<ts>/manifest.json` and `manifest.checksum`. Keys URL-encoded in CSV. Returns the manifest URI."""
    dest = f"inventory-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=dest)
    base = f"{source}/daily"
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source):
        for obj in page.get("Contents", []):
            rows.append([source, obj["Key"], "", "true", "false", str(obj["Size"]),
                         obj["LastModified"].strftime("%Y-%m-%dT%H:%M:%S.000Z"), obj["ETag"].strip('"'), "STANDARD"])
    rows += extra_rows
    entries = []
    for i in range(files):
        part = rows[i::files]
        if fmt == "CSV":
            text = io.StringIO()
            csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(
                [r[0], quote_plus(r[1], safe="/"), *r[2:]] for r in part)
            body, key = gzip.compress(text.getvalue().encode()), f"{base}/data/{uuid.uuid4()}.csv.gz"
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            names = ["bucket", "key", "version_id", "is_latest", "is_delete_marker", "size", "last_modified_date",
                     "e_tag", "storage_class"]
            cols = list(zip(*part, strict=True)) if part else [[] for _ in names]
            table = pa.table({
                n: pa.array([(v == "true") for v in c] if n in ("is_latest", "is_delete_marker")
                            else [int(v) if v else None for v in c] if n == "size" else list(c))
                for n, c in zip(names, cols, strict=True)})
            out = io.BytesIO()
            pq.write_table(table, out)
            body, key = out.getvalue(), f"{base}/data/{uuid.uuid4()}.parquet"
        s3.put_object(Bucket=dest, Key=key, Body=body)
        entries.append({"key": key, "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()})
    manifest = json.dumps({
        "sourceBucket": source, "destinationBucket": f"arn:aws:s3:::{dest}", "version": "2016-11-30",
        "creationTimestamp": "1714521600000", "fileFormat": fmt,
        "fileSchema": ", ".join(SCHEMA) if fmt == "CSV" else "message s3.inventory { required binary bucket; }",
        "files": entries}).encode()
    s3.put_object(Bucket=dest, Key=f"{base}/2024-05-01T01-00Z/manifest.json", Body=manifest)
    if checksum:
        s3.put_object(Bucket=dest, Key=f"{base}/2024-05-01T01-00Z/manifest.checksum",
                      Body=hashlib.md5(manifest).hexdigest().encode() + b"\n")
    return f"s3://{dest}/{base}/2024-05-01T01-00Z/manifest.json"


@pytest.mark.parametrize("fmt", ["CSV", "Parquet"])
def test_an_inventory_report_gives_the_same_catalogue_as_the_listing(photo_bucket, s3, tmp_path, fmt):
    stale = [  # a delete marker, and an older version of a key that exists
        [photo_bucket, "old/gone.jpg", "v1", "false", "true", "", "2024-01-01T00:00:00.000Z", "", ""],
        [photo_bucket, "albums/cat.png", "v0", "false", "false", "10", "2023-01-01T00:00:00.000Z", "x", "STANDARD"]]
    manifest = write_inventory(s3, photo_bucket, files=3, fmt=fmt, extra_rows=stale)
    listed, inventoried = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    backfill(f"s3://{photo_bucket}/", listed)

    summary = backfill(manifest, inventoried)
    assert snapshot(inventoried) == snapshot(listed)
    assert summary["skipped"] == {"extension .txt": 1, "folder marker": 1, "delete marker": 1,
                                  "not the latest version": 1}
    assert "3 " + fmt in summary["source"]


def test_a_damaged_manifest_is_refused_by_its_checksum(photo_bucket, s3, tmp_path):
    manifest = write_inventory(s3, photo_bucket)
    bucket, key = manifest[5:].split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=s3.get_object(Bucket=bucket, Key=key)["Body"].read() + b" ")
    proc = subprocess.run([PIXDEX, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", "backfill", manifest],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "does not match" in proc.stderr and "manifest.checksum" in proc.stderr


# -- shards ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["listing", "inventory by file", "inventory by key"])
def test_three_shards_run_separately_make_the_same_catalogue_as_one_run(photo_bucket, s3, tmp_path, kind):
    # 4 data files for 3 shards: dealt out by position; 2 files: every shard reads both, keeps its keys
    files = {"inventory by file": 4, "inventory by key": 2}.get(kind)
    source = write_inventory(s3, photo_bucket, files=files) if files else f"s3://{photo_bucket}/"
    whole, sharded = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'three.db'}"
    backfill(source, whole)
    parts = [backfill(source, sharded, shard=Shard(i, 3)) for i in (1, 2, 3)]

    assert snapshot(sharded) == snapshot(whole)
    assert sum(p["labelled"] + p["failed"] for p in parts) == len(GOOD) + len(BROKEN)  # disjoint
    assert [p["shard"] for p in parts] == ["1/3", "2/3", "3/3"]


def test_the_shard_comes_from_the_aws_batch_array_index(photo_bucket, tmp_path):
    env = {**os.environ, "AWS_BATCH_JOB_ARRAY_INDEX": "1", "PIXDEX_SHARDS": "3"}
    proc = subprocess.run([PIXDEX, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", "backfill", f"s3://{photo_bucket}/",
                           "--dry-run", "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["shard"] == "2/3" and summary["other_shards"] > 0
    assert summary["listed"] + summary["other_shards"] == len(GOOD) + len(BROKEN) + 2


# -- kill -9, SIGTERM ------------------------------------------------------------------------------

@pytest.fixture
def many_photos(s3, photos) -> tuple[str, int]:
    name = f"many-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    blobs = [(photos / p).read_bytes() for p in TOP]
    n = 40
    for i in range(n):
        s3.put_object(Bucket=name, Key=f"img/{i:03d}.{'png' if i % 4 == 0 else 'jpg'}", Body=blobs[i % 4])
    return name, n


def count(db: Path) -> tuple[int, int]:
    if not db.exists():
        return 0, 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        try:
            return conn.execute("SELECT COUNT(*), COUNT(DISTINCT uri) FROM images").fetchone()
        except sqlite3.OperationalError as exc:  # the file exists, its tables are not made yet
            if "no such table" not in str(exc):
                raise
            return 0, 0


# Reads a second for the runs stopped midway: the first records are written about 4 s after the
# start (imports, the model, its first batch), and at 8 a second all 40 photos had been read by then
# on a loaded machine, leaving nothing for the stop to leave; at 2 a second reading takes 20 s.
SLOW_READS = ("--max-reads-per-second", "2")


def start(bucket: str, db: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([PIXDEX, "--catalog", f"sqlite:///{db}", "backfill", f"s3://{bucket}/", "--device", "cpu",
                             "--batch-size", "2", "--quiet", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_records(db: Path, proc: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while count(db)[0] < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no records written"
        time.sleep(0.05)


def test_kill_9_mid_run_then_resume_labels_only_the_remainder(many_photos, tmp_path):
    bucket, n = many_photos
    db = tmp_path / "c.db"
    proc = start(bucket, db, *SLOW_READS)
    wait_for_records(db, proc, 4)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    written, distinct = count(db)
    assert 4 <= written < n and written == distinct

    resumed = start(bucket, db)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    summary = json.loads(out)
    assert summary["skipped"] == {"unchanged (same bytes, same model)": written}
    assert summary["labelled"] == n - written  # exactly the remainder, none twice
    assert count(db) == (n, n)


def test_sigterm_writes_what_is_labelled_and_exits_0(many_photos, tmp_path):
    bucket, n = many_photos
    db = tmp_path / "c.db"
    proc = start(bucket, db, *SLOW_READS)
    wait_for_records(db, proc, 2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped_by"] == "SIGTERM" and "SIGTERM" in err
    assert summary["labelled"] < n and summary["left"] > 0
    assert count(db)[0] == summary["labelled"]  # everything labelled was written before exiting

    rest = start(bucket, db)
    out, _ = rest.communicate(timeout=300)
    assert json.loads(out)["labelled"] == n - summary["labelled"]
    assert count(db) == (n, n)


# -- failures --------------------------------------------------------------------------------------

def test_the_exit_code_follows_the_failure_rate(photo_bucket, tmp_path):
    cmd = [PIXDEX, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", "backfill", f"s3://{photo_bucket}/", "--quiet",
           "--report", str(tmp_path / "out" / "report.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1  # 3 broken of 9: over the default 5%
    assert "over --max-failure-rate" in proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report == json.loads(proc.stdout) and report["examples"]["empty file"][0]["uri"].endswith("empty.png")

    tolerant = subprocess.run([*cmd, "--relabel", "--max-failure-rate", "0.5"], capture_output=True, text=True,
                              timeout=300)
    assert tolerant.returncode == 0, tolerant.stderr


def test_a_uri_list_with_deleted_objects_and_bad_lines(photo_bucket, s3, tmp_path, photos):
    uris = tmp_path / "uris.txt"
    uris.write_text("\n".join([
        "# what the data team exported", f"s3://{photo_bucket}/albums/cat.png",
        f"s3://{photo_bucket}/deleted since.jpg", str(photos / "coffee.jpg"), (photos / "rocket.jpg").as_uri(),
        "https://example.com/x.jpg", ""]), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'c.db'}"
    summary = backfill(str(uris), db)

    assert summary["labelled"] == 3 and summary["removed"] == 1
    assert summary["failures"] == {"deleted since listed": 1}
    assert summary["skipped"] == {"not an s3://, file:// URI or absolute path": 1}
    assert summary["skip_examples"] == {"not an s3://, file:// URI or absolute path": ["line 6: https://example.com/x.jpg"]}
    seen = snapshot(db)
    assert "espresso" in seen[(photos / "coffee.jpg").resolve().as_uri()][1]
    assert f"s3://{photo_bucket}/deleted since.jpg" not in seen  # no record for an object that is gone


def test_bad_lines_of_a_uri_list_are_failures_of_their_line_and_the_rest_is_labelled(tmp_path, photos):
    # GIVEN a list a hostile tester wrote: a symlink loop, bytes that are not UTF-8, a file on
    # another host, and three photos, each named twice (as a path, then as a file:// URI)
    folder = tmp_path / "fs"
    folder.mkdir()
    (folder / "loop1.jpg").symlink_to("loop2.jpg")
    (folder / "loop2.jpg").symlink_to("loop1.jpg")
    good = {name: folder / name for name in ["cat.png", "coffee.jpg", "rocket.jpg"]}
    for name, path in good.items():
        path.write_bytes((photos / name).read_bytes())
    uris = tmp_path / "uris.txt"
    uris.write_bytes(b"\n".join([
        str(folder / "loop1.jpg").encode(), *(str(p).encode() for p in good.values()),
        str(folder).encode() + b"/\xff\xfe.jpg", f"file://otherhost{good['cat.png']}".encode(),
        *(p.as_uri().encode() for p in good.values()), b""]))
    db = tmp_path / "c.db"

    # WHEN it is backfilled
    proc = subprocess.run([PIXDEX, "--catalog", f"sqlite:///{db}", "backfill", str(uris), "--quiet"],
                          capture_output=True, text=True, timeout=300)

    # THEN the three photos are labelled once each, and each bad line is a failure naming its line
    summary = json.loads(proc.stdout)
    assert (summary["labelled"], summary["failed"], summary["error"]) == (3, 3, None)
    assert summary["failures"] == {"symlink loop": 1, "not UTF-8": 1, "file URI of another host": 1}
    assert {reason: [e["uri"] for e in kept] for reason, kept in summary["examples"].items()} == {
        "symlink loop": [f"line 1: {folder}/loop1.jpg"], "not UTF-8": [f"line 5: {folder}/\\xff\\xfe.jpg"],
        "file URI of another host": [f"line 6: file://otherhost{good['cat.png']}"]}
    assert summary["skipped"] == {"repeats an earlier line": 3}
    assert proc.returncode == 1 and "labelled 3; 9 done: labelled 3, skipped 3, failed 3" in proc.stderr
    assert "over --max-failure-rate" in proc.stderr  # 3 of 6 failed
    assert "Error" not in proc.stderr and "Traceback" not in proc.stderr
    seen = snapshot(f"sqlite:///{db}")
    assert sorted(seen) == sorted(p.resolve().as_uri() for p in good.values())  # no record for a bad line
    for name, path in good.items():
        status, labels = seen[path.resolve().as_uri()]
        assert status == "LABELED" and TOP[name] in labels, name

    # and the loop is a clear error to the commands that look a path up, not a pixdex bug
    for command in ["show", "delete", "similar"]:
        looked = subprocess.run([PIXDEX, "--catalog", f"sqlite:///{db}", command, str(folder / "loop1.jpg")],
                                capture_output=True, text=True, timeout=120)
        assert looked.returncode == 1, command
        assert looked.stderr.strip() == f"pixdex: error: cannot resolve {folder}/loop1.jpg: a symlink loop", command


class FlakyS3(StandIn):
    """Answers GET with 503 SlowDown `failures` times, then with the photo."""

    failures = 2
    body = b""
    gets = 0

    def do_GET(self):
        type(self).gets += 1
        if self.gets <= self.failures:
            err = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            self.reply(503, err)
            return
        self.reply(200, self.body, headers={"ETag": '"0123abcd"', "Last-Modified": "Wed, 01 May 2024 10:00:00 GMT"})


@pytest.mark.parametrize(("failures", "labelled", "deferred"), [(2, 1, 0), (99, 0, 1)])
def test_store_failures_are_retried_then_deferred_not_recorded(aws, tmp_path, photos, failures, labelled, deferred):
    from indexer.settings import Settings

    FlakyS3.failures, FlakyS3.body, FlakyS3.gets = failures, (photos / "coffee.jpg").read_bytes(), 0
    uris = tmp_path / "uris.txt"
    uris.write_text("s3://b/coffee.jpg\n")
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with http_server(FlakyS3) as endpoint:
        settings = Settings(catalog=db, device="cpu", s3_endpoint=endpoint,
                            aws_max_attempts=0)  # botocore's retries off: the backfill's own are under test
        report = run(str(uris), settings, Options(retries=2), progress=False)
    assert (report.labelled, report.deferred, report.retries) == (labelled, deferred, 2)
    assert FlakyS3.gets == 3
    records = snapshot(db)
    assert list(records) == (["s3://b/coffee.jpg"] if labelled else [])
    assert all(status == "LABELED" and "espresso" in labels for status, labels in records.values())


def test_the_opensearch_catalogue_resumes_without_a_refresh(photo_bucket, osmem_clone):
    from indexer.settings import Settings

    settings = Settings(catalog=osmem_clone.url, device="cpu", batch_size=4)
    first = run(f"s3://{photo_bucket}/", settings, Options(), progress=False)
    again = run(f"s3://{photo_bucket}/", settings, Options(), progress=False)
    assert (first.labelled, first.failed) == (len(GOOD), len(BROKEN))
    assert again.labelled == 0 and sum(again.skipped.values()) == len(GOOD) + len(BROKEN) + 2
    with open_catalog(osmem_clone.url, settings) as catalog:
        cat = catalog.get(record_id(f"s3://{photo_bucket}/albums/cat.png"))
        assert cat.status == Status.LABELED and cat.confidence("cat") > 0.5


def test_without_a_terminal_progress_is_a_log_line_every_interval(many_photos, tmp_path):
    bucket, _ = many_photos
    proc = subprocess.run([PIXDEX, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", "backfill", f"s3://{bucket}/",
                           "--limit", "12", "--max-reads-per-second", "8", "--log-interval", "0.3"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "done: labelled" in line]
    assert len(lines) >= 3, proc.stderr  # periodic lines for Batch logs, then the final one
    assert lines[-1].startswith("pixdex backfill: labelled 12; 12 done: labelled 12")
    assert "\r" not in proc.stderr  # no bar redrawn into a log file


def test_limit_labels_the_next_n_each_run(photo_bucket, tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    runs = [backfill(f"s3://{photo_bucket}/", db, limit=4) for _ in range(3)]
    assert [r["todo"] for r in runs] == [4, 4, 1]  # 9 images in all
    assert len(snapshot(db)) == len(GOOD) + len(BROKEN)
    for r in runs:  # every entry examined is accounted for
        assert r["listed"] == r["todo"] + sum(r["skipped"].values())


def test_a_damaged_inventory_data_file_ends_the_run_with_its_name(photo_bucket, s3, tmp_path):
    manifest = write_inventory(s3, photo_bucket, files=1)
    bucket = manifest[5:].split("/", 1)[0]
    [data] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].endswith(".csv.gz")]
    s3.put_object(Bucket=bucket, Key=data, Body=gzip.compress(b'"x","y"\n'))
    proc = subprocess.run([PIXDEX, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", "backfill", manifest, "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert "the data file is damaged" in summary["error"] and data in summary["error"]
    assert "stopped by an error" in proc.stderr


@pytest.mark.parametrize(("source", "message"), [
    ("s3://no-such-bucket-here/photos/", "no bucket 'no-such-bucket-here'"),
    ("s3://{bucket}/inventory/manifest.json", "no such manifest"),
])
def test_a_wrong_bucket_or_manifest_is_a_bad_source(photo_bucket, tmp_path, source, message):
    proc = subprocess.run([PIXDEX, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", "backfill",
                           source.format(bucket=photo_bucket)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr and proc.stdout == ""


def test_a_catalogue_that_refuses_writes_ends_the_run_with_exit_1_and_a_summary(photo_bucket, osmem_clone, tmp_path):
    env = {**os.environ, "PIXDEX_OPENSEARCH__EMBEDDING_DIM": "3"}  # the index wants 3-d vectors, the model gives 1280
    proc = subprocess.run([PIXDEX, "--catalog", osmem_clone.url, "backfill", f"s3://{photo_bucket}/", "--quiet"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert "embedding has 1280 dimensions" in summary["error"] and summary["labelled"] == 0
    assert "what was written stays, run again to finish" in proc.stderr


def test_a_key_deleted_by_an_event_during_the_backfill_is_not_brought_back(tmp_path, photos, labeller):
    from backfill.report import Report
    from backfill.stages import Labelled, Seen, Writer
    from indexer.ingest.pipeline import decode_fetched, label_records
    from indexer.settings import ImageLimits
    from indexer.sources.base import Fetched, SourceItem

    with open_catalog(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        item = SourceItem(uri="s3://photos/cat.png", bucket="photos", key="cat.png")
        seen, report = Seen(), Report(source="test")
        seen[record_id(item.uri)] = None  # the skip check: not in the catalogue, no event applied yet
        decoded = decode_fetched(Fetched(item, (photos / "cat.png").read_bytes()), ImageLimits(), 224)
        labelled = Labelled(label_records(labeller, [decoded]), [None], [])
        catalog.delete([record_id(item.uri)], sequencer="0055AED6DCD90281E5")  # meanwhile: the key's delete event

        writer = Writer(catalog, report, seen)
        writer.add(labelled)
        writer.flush()
        assert catalog.get(item.uri) is None  # the record of a deleted object is not written
        assert report.skipped == {"changed by a bucket event during the backfill": 1} and report.labelled == 0
