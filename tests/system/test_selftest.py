"""The whole system on one machine, as a user meets it: `pixdex selftest` against the local stack
(moto's S3 and SQS, the bucket notifying the queue; osmem-server as OpenSearch; `pixdex watch
--queue` as the indexer Lambda; `pixdex api` as API Gateway + the API Lambda), each a real
process or server over real sockets. Submit -> event -> label -> search finds it -> delete -> gone,
then a signed upload sent to the bucket itself -> label -> delete."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port, wait_for_port

PIXDEX = str(Path(sys.executable).parent / "pixdex")


@contextmanager
def stack(bucket, catalog_url: str, watcher: bool = True):
    """`pixdex api` (and `pixdex watch --queue` on the bucket's queue) as real processes."""
    env = {**os.environ, "PIXDEX_CATALOG": catalog_url, "PIXDEX_UPLOAD_BUCKET": f"s3://{bucket.name}/",
           "PIXDEX_DEVICE": "cpu"}
    port = free_port()
    procs = [subprocess.Popen([PIXDEX, "api", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)]
    if watcher:
        procs.append(subprocess.Popen([PIXDEX, "watch", "--queue", bucket.queue_url, "--wait", "1"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    try:
        wait_for_port(port, procs[0], "the API")
        yield f"http://127.0.0.1:{port}", env
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


def selftest(url: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PIXDEX, "selftest", "--api", url, "--timeout", str(timeout)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_selftest_passes_through_the_local_stack(bucket, osmem_clone):
    with stack(bucket, osmem_clone.url) as (url, env):
        proc = selftest(url, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines[:7]] == ["ok"] * 7
    assert "LABELED" in lines[1] and "espresso" in lines[1] and "404 afterwards" in lines[3]
    # then a signed upload, sent to the bucket itself, goes the same way
    assert "a signed upload to the bucket" in lines[4] and f"s3://{bucket.name}/api/" in lines[4]
    assert "LABELED" in lines[5] and "espresso" in lines[5] and "404 afterwards" in lines[6]
    assert lines[-1] == "selftest passed"
    assert "Contents" not in bucket.s3.list_objects_v2(Bucket=bucket.name)  # both objects deleted


def test_selftest_names_the_step_that_fails(bucket, tmp_path):
    with stack(bucket, f"sqlite:///{tmp_path / 'c.db'}", watcher=False) as (url, env):  # nothing labels it
        proc = selftest(url, env, timeout=2)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith("ok  submit an image")
    assert "FAILED the event labels it: still NOT_CLASSIFIED after 2s" in proc.stdout


def test_selftest_says_when_the_api_is_unreachable():
    proc = subprocess.run([PIXDEX, "selftest", "--api", f"http://127.0.0.1:{free_port()}"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "FAILED submit an image: cannot reach the API" in proc.stdout
