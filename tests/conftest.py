"""Shared fixtures: the real photos, the real model (loaded once), fresh SQLite catalogues."""

from __future__ import annotations

import http.server
import io
import os
import socket
import struct
import subprocess
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from indexer.catalog import open_catalog
from indexer.model.labeller import Labeller, make_labeller
from indexer.settings import ModelSettings, Settings

PHOTOS = Path(__file__).parent / "data" / "photos"

# The suite's labels come from one runtime, whatever `make compiled` left on this machine: the
# compiled ones are tested against it in tests/integration/test_runtimes.py. Subprocesses inherit it.
os.environ.setdefault("PIXDEX_MODEL_RUNTIME", "channels_last")


@pytest.fixture(scope="session")
def photos() -> Path:
    return PHOTOS


@pytest.fixture(scope="session")
def labeller() -> Labeller:
    model = make_labeller(ModelSettings(device="cpu"))
    model.load()
    return model


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", device="cpu", decode_workers=2, batch_size=4)


@pytest.fixture
def catalog(settings: Settings):
    with open_catalog(settings.catalog) as cat:
        yield cat


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries almost no data (a decompression bomb header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def save(img: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def exif_rotated_jpeg(upright: Image.Image) -> bytes:
    """Pixels stored turned 90° counter-clockwise, with EXIF orientation 6 ("rotate 90° CW to view")."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=92, exif=exif.tobytes())


# name -> (bytes builder, expected: "LABELED" plus a label that must be top-1, or an error fragment)
def tricky_inputs(photos: Path) -> dict[str, tuple[bytes, str]]:
    cat = Image.open(photos / "cat.png").convert("RGB")
    coffee = Image.open(photos / "coffee.jpg")
    gray = Image.fromarray(np.asarray(Image.open(photos / "cameraman.jpg").convert("L"), dtype=np.int32) * 257, "I")
    frames = [cat, Image.new("RGB", cat.size, (0, 0, 255))]
    palette = coffee.convert("RGB").quantize(255)
    palette.info["transparency"] = 0
    return {
        "empty.jpg": (b"", "empty file"),
        "notes.jpg": (b"shopping list: milk, eggs\n" * 20, "not an image"),
        "truncated.jpg": ((photos / "coffee.jpg").read_bytes()[:20_000], "truncated or corrupt"),
        "pixel.png": (save(Image.new("RGB", (1, 1), "red"), "PNG"), "1x1 px"),
        "bomb.png": (png_header_only(30000, 30000), "decompression bomb"),
        "damaged.webp": (save(coffee, "WEBP")[:1000], "header is damaged"),
        "cmyk.jpg": (save(coffee.convert("CMYK"), "JPEG", quality=92), "espresso"),
        "sixteen.png": (save(gray.convert("I;16"), "PNG"), "tripod"),
        "animated.gif": (save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100), "cat"),
        "palette.png": (save(palette, "PNG", transparency=0), "espresso"),
        "rotated.jpg": (exif_rotated_jpeg(cat), "cat"),
    }


@pytest.fixture
def tricky_folder(tmp_path: Path, photos: Path) -> tuple[Path, dict[str, tuple[bytes, str]]]:
    folder = tmp_path / "tricky"
    folder.mkdir()
    cases = tricky_inputs(photos)
    for name, (data, _) in cases.items():
        (folder / name).write_bytes(data)
    return folder, cases


# -- AWS stand-ins: moto's server over a real socket ---------------------------------------------

@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Standard AWS variables pointing boto3 (here and in child processes) at moto."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto_endpoint}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_endpoint


@dataclass
class Bucket:
    """A bucket whose notifications go to an SQS queue, as production wires it."""

    name: str
    queue_url: str
    s3: Any
    sqs: Any

    def put(self, key: str, data: bytes) -> dict:
        return self.s3.put_object(Bucket=self.name, Key=key, Body=data)

    def messages(self, wait: float = 5.0, expect: int = 1) -> list[dict]:
        """What the bucket sent to the queue (at least `expect` messages, or all after `wait` s)."""
        got: list[dict] = []
        deadline = time.monotonic() + wait
        while len(got) < expect and time.monotonic() < deadline:
            got += self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                            AttributeNames=["All"]).get("Messages", [])
        return got

    def lambda_event(self, messages: list[dict]) -> dict:
        """Messages in the shape Lambda's SQS event source hands them to the function."""
        from indexer.local.queue_watch import sqs_lambda_event

        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        return sqs_lambda_event(messages, arn["QueueArn"])


def make_bucket(versioned: bool = False) -> Bucket:
    import boto3

    from indexer.local.stack import event_bucket

    name = f"photos-{uuid.uuid4().hex[:12]}"
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    queue_url = event_bucket(s3, sqs, name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return Bucket(name, queue_url, s3, sqs)


@pytest.fixture
def bucket(aws: str) -> Bucket:
    return make_bucket()


@pytest.fixture
def versioned_bucket(aws: str) -> Bucket:
    return make_bucket(versioned=True)


# -- servers: local HTTP stand-ins in a thread; the app and the API as processes ---------------

class StandIn(http.server.BaseHTTPRequestHandler):
    """A local stand-in server's request handler: quiet, with one way to answer."""

    def reply(self, status: int, body: bytes = b"", content_type: str | None = None,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served from a thread on a free local port; yields its base URL http://127.0.0.1:PORT."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 60) -> None:
    """Until `proc` listens on `port`; fails with its output if it exits first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.2)
