"""`pixdex stack` as a developer uses it: start it, drop a photo in its bucket, search, run the
selftest against its API, stop it with SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3

PIXDEX = str(Path(sys.executable).parent / "pixdex")


def test_the_local_stack_end_to_end(photos, monkeypatch):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIXDEX_"))}
    proc = subprocess.Popen([PIXDEX, "stack", "--s3-port", "0", "--api-port", "0"], env={**env, "PIXDEX_DEVICE": "cpu"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    deadline = time.monotonic() + 120
    while not any("pixdex selftest --api" in line for line in lines):
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.2)
    text = "".join(lines)
    s3_url = re.search(r"S3 \+ SQS \(moto\)\s+(\S+)", text)[1]
    opensearch = re.search(r"OpenSearch \(osmem\)\s+(\S+)", text)[1]
    api = re.search(r"image API\s+(\S+)", text)[1]
    try:
        for name, value in {"AWS_ENDPOINT_URL": s3_url, "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        photo = (photos / "cat.png").read_bytes()
        boto3.client("s3").put_object(Bucket="pixdex-photos", Key="drop/cat.png", Body=photo)
        search_env = {**env, "PIXDEX_CATALOG": opensearch}
        deadline = time.monotonic() + 60
        while True:  # the watcher labels what lands in the bucket
            found = subprocess.run([PIXDEX, "search", "cat", "--json"], env=search_env, capture_output=True,
                                   text=True, timeout=60)
            if "s3://pixdex-photos/drop/cat.png" in found.stdout:
                break
            assert time.monotonic() < deadline, found.stdout + found.stderr
            time.sleep(1)

        selftest = subprocess.run([PIXDEX, "selftest", "--api", api], env=env, capture_output=True, text=True,
                                  timeout=300)
        assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0 and "pixdex stack: stopped" in "".join(lines)
