"""indexer.local.queue_watch, folder_watch and `pixdex watch`: the SQS loop against moto, the folder loop on real files,
and both commands as real processes stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from indexer.catalog import Query, open_catalog
from indexer.ingest.sync import Sync
from indexer.local.folder_watch import FolderWatcher
from indexer.local.queue_watch import QueueWatcher
from indexer.sources.files import FileSource, file_uri
from indexer.sources.s3 import S3Source, make_client, s3_uri

PIXDEX = [sys.executable, "-m", "indexer.cli"]


def wait_for(condition, timeout: float = 60.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"still false after {timeout}s: {condition}")


# -- the SQS loop ------------------------------------------------------------------------------

@pytest.fixture
def queue_watcher(bucket, settings, labeller, catalog) -> QueueWatcher:
    sync = Sync(settings, labeller, catalog, S3Source(settings))
    return QueueWatcher(bucket.queue_url, sync, make_client(settings, "sqs"), wait_seconds=1, visibility_timeout=1)


def test_applied_messages_are_deleted_failed_ones_come_back(bucket, queue_watcher, catalog, photos):
    bucket.put("cat.png", (photos / "cat.png").read_bytes())
    bucket.sqs.send_message(QueueUrl=bucket.queue_url, MessageBody="garbage")
    messages = wait_for(lambda: (got := queue_watcher.receive()) and len(got) == 3 and got, timeout=10)
    stats = queue_watcher.process(messages)  # the test event, the upload, the garbage
    assert (stats.received, stats.deleted, stats.failed) == (3, 2, 1)
    assert catalog.get(s3_uri(bucket.name, "cat.png")) is not None
    time.sleep(1.2)  # the visibility timeout passes: only the failed message is handed out again
    again = queue_watcher.receive()
    assert [m["Body"] for m in again] == ["garbage"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_message_failing_max_receives_times_goes_to_the_dead_letter_queue(bucket, queue_watcher):
    sqs = bucket.sqs
    dlq_url = sqs.create_queue(QueueName=f"{bucket.name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=bucket.queue_url, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})
    assert queue_watcher.process(queue_watcher.receive()).deleted == 1  # the test event
    sqs.send_message(QueueUrl=bucket.queue_url, MessageBody='{"not": "an event"}')
    for _ in range(2):
        assert queue_watcher.process(queue_watcher.receive()).failed == 1
        time.sleep(1.2)
    assert queue_watcher.receive() == []  # moved on the third receive
    dead = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in dead] == ['{"not": "an event"}']


def test_run_stops_when_asked_after_the_batch_in_hand(bucket, queue_watcher, catalog, photos):
    stop = threading.Event()
    batches = []

    def on_batch(stats):
        batches.append(stats)
        if catalog.get(s3_uri(bucket.name, "cat.png")):
            stop.set()

    worker = threading.Thread(target=queue_watcher.run, args=(stop, on_batch))
    worker.start()
    bucket.put("cat.png", (photos / "cat.png").read_bytes())
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert sum(b.deleted for b in batches) == 2 and sum(b.failed for b in batches) == 0  # test event + upload


# -- the folder loop ---------------------------------------------------------------------------

@pytest.fixture
def folder_watcher(tmp_path, settings, labeller, catalog) -> FolderWatcher:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return FolderWatcher(folder, Sync(settings, labeller, catalog, FileSource(settings.limits)), interval=0)


def test_a_file_is_indexed_once_it_stops_changing(folder_watcher, catalog, photos):
    data = (photos / "coffee.jpg").read_bytes()
    target = folder_watcher.folder / "coffee.jpg"
    target.write_bytes(data[:1000])  # a copy in progress
    assert folder_watcher.poll() == []
    with target.open("ab") as f:
        f.write(data[1000:])
    assert folder_watcher.poll() == []  # it changed since the last poll: not settled yet
    [event] = folder_watcher.poll()
    assert event.uri == file_uri(target)
    record = catalog.get(file_uri(target))
    assert record.best_labels(1)[0].name == "espresso"  # the whole file, never the partial one
    assert folder_watcher.poll() == []  # unchanged: nothing to do


def test_changed_and_removed_files(folder_watcher, catalog, photos):
    target = folder_watcher.folder / "pet.png"
    shutil.copy(photos / "cat.png", target)
    folder_watcher.poll()
    folder_watcher.poll()
    assert "cat" in catalog.get(file_uri(target)).label_names
    shutil.copy(photos / "coffee.jpg", target)  # new bytes under the same name
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    folder_watcher.poll()
    folder_watcher.poll()
    assert catalog.get(file_uri(target)).best_labels(1)[0].name == "espresso"
    target.unlink()
    folder_watcher.poll()
    assert catalog.get(file_uri(target)) is None and catalog.search(Query()).total == 0


def test_files_removed_while_nobody_watched_are_removed_at_start(folder_watcher, catalog, photos):
    kept, gone = folder_watcher.folder / "kept.png", folder_watcher.folder / "gone.png"
    for path in (kept, gone):
        shutil.copy(photos / "cat.png", path)
    folder_watcher.poll()
    folder_watcher.poll()
    assert catalog.search(Query()).total == 2
    gone.unlink()
    stop = threading.Event()
    stop.set()  # start, reconcile, stop
    removed = []
    folder_watcher.run(stop, on_removed=removed.append)
    assert removed == [file_uri(gone)] and catalog.get(file_uri(kept)) is not None


def test_a_folder_that_goes_away_keeps_its_records_until_it_is_back(folder_watcher, catalog, photos, caplog):
    """A moved folder or an unplugged drive is out of reach, not emptied: nothing is removed."""
    folder = folder_watcher.folder
    for name in ("a.png", "b.png"):
        shutil.copy(photos / "cat.png", folder / name)
    folder_watcher.poll()
    folder_watcher.poll()
    assert catalog.search(Query()).total == 2
    away = folder.with_name("moved")
    folder.rename(away)
    assert folder_watcher.poll() == [] and folder_watcher.poll() == []
    stop = threading.Event()
    stop.set()
    folder_watcher.run(stop)  # the start-up reconcile does not remove them either
    assert catalog.search(Query()).total == 2
    assert sum("is gone" in r.message for r in caplog.records) == 1  # said once, not every poll
    away.rename(folder)
    (folder / "b.png").unlink()  # back, and a file really removed meanwhile
    [event] = folder_watcher.poll()
    assert event.uri == file_uri(folder / "b.png") and catalog.search(Query()).total == 1
    assert any("is back" in r.message for r in caplog.records)


# -- the commands, as a user runs them -----------------------------------------------------------

def start(args: list[str], catalog_url: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([*PIXDEX, "--catalog", catalog_url, "watch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def stop_cleanly(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping" in err and "pixdex watch: stopped" in err
    return err


def test_watch_folder_command(tmp_path, photos, settings):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = start([str(inbox), "--interval", "0.2"], settings.catalog)
    try:
        shutil.copy(photos / "cat.png", inbox / "cat.png")
        with open_catalog(settings.catalog) as catalog:
            wait_for(lambda: catalog.get(file_uri(inbox / "cat.png")))
            (inbox / "cat.png").unlink()
            wait_for(lambda: catalog.get(file_uri(inbox / "cat.png")) is None)
    finally:
        err = stop_cleanly(proc)
    assert f"labelled {file_uri(inbox / 'cat.png')}: Egyptian cat" in err
    assert f"removed {file_uri(inbox / 'cat.png')}" in err


def test_watch_queue_command(bucket, photos, settings):
    proc = start(["--queue", bucket.queue_url, "--wait", "1"], settings.catalog)
    try:
        bucket.put("watched/cat 1.png", (photos / "cat.png").read_bytes())
        with open_catalog(settings.catalog) as catalog:
            record = wait_for(lambda: catalog.get(s3_uri(bucket.name, "watched/cat 1.png")))
        assert "cat" in record.label_names
        wait_for(lambda: queue_depth(bucket) == 0, timeout=10)  # deleted once applied, not just hidden
    finally:
        err = stop_cleanly(proc)
    assert "applied, 0 left for retry" in err


def queue_depth(bucket) -> int:
    attrs = bucket.sqs.get_queue_attributes(QueueUrl=bucket.queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_watch_needs_a_folder_or_a_queue(tmp_path, settings):
    run = subprocess.run([*PIXDEX, "watch", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert run.returncode == 2 and "is not a folder" in run.stderr
    run = subprocess.run([*PIXDEX, "watch"], capture_output=True, text=True)
    assert run.returncode == 2 and "one of the arguments DIR --queue is required" in run.stderr



def test_the_folder_watcher_loads_no_aws_module():
    code = ("import sys, indexer.local.folder_watch; "
            "print(sorted(m for m in sys.modules if m.startswith('indexer.aws')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_subfolder_that_cannot_be_read_keeps_its_records(tmp_path, photos, settings):
    """Its files were out of the listing, so each poll removed their records."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-r", "true"]).returncode != 0:
        pytest.skip("unshare -r is not available (the suite runs as root, which reads any folder)")
    inbox, sub = tmp_path / "inbox", tmp_path / "inbox" / "sub"
    sub.mkdir(parents=True)
    shutil.copy(photos / "cat.png", sub / "cat.png")
    shutil.copy(photos / "coffee.jpg", inbox / "coffee.jpg")
    os.chown(sub, 12345, 12345)  # another user's: closed to root of its own user namespace once chmod 0
    proc = subprocess.Popen(["unshare", "-r", *PIXDEX, "--catalog", settings.catalog, "watch", str(inbox),
                             "--interval", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with open_catalog(settings.catalog) as catalog:
            wait_for(lambda: catalog.get(file_uri(sub / "cat.png")) and catalog.get(file_uri(inbox / "coffee.jpg")))
            sub.chmod(0)
            time.sleep(2)  # ten polls
            assert catalog.get(file_uri(sub / "cat.png")) is not None
    finally:
        sub.chmod(0o755)
        err = stop_cleanly(proc)
    assert err.count(f"cannot read folder {sub}") == 1 and f"removed {file_uri(sub / 'cat.png')}" not in err
