"""`pixdex selftest --api URL`: one image through the whole system, as a user would send it:
submit -> the bucket's event -> labelled -> search finds it -> delete -> gone; then the same image
the way large ones go, a signed upload straight to the bucket (POST /uploads) -> labelled ->
deleted. Against the local stack or a deployed environment; each step prints what it saw and how
long it took."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import urllib3

from indexer.errors import PixdexError

PHOTO = files("indexer.data") / "selftest.jpg"  # the espresso photo: labelled "espresso" at 0.95
EXPECTED = "espresso"


class SelftestFailed(PixdexError):
    """A step of the selftest did not pass; the message names it."""


def run(api: str, timeout: float = 120.0, token: str | None = None, say: Callable[[str], None] = print) -> str:
    """Returns the id of the last image that went through; raises SelftestFailed naming the step."""
    return Selftest(api, timeout, token, say).run()


class Selftest:
    """The steps, each a method returning what it saw; `id` is the image in hand."""

    def __init__(self, api: str, timeout: float, token: str | None, say: Callable[[str], None]) -> None:
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30), retries=False)
        self.headers = {"Authorization": token} if token else {}
        self.api, self.base, self.timeout, self.say = api, api.rstrip("/"), timeout, say
        self.id = ""

    def run(self) -> str:
        self.step("submit an image", self.submit)
        self.step("the event labels it", self.labelled)
        self.step(f"search {EXPECTED!r} finds it", self.found)
        self.step("delete, then it is gone", self.deleted)
        self.step("a signed upload to the bucket", self.signed_upload)
        self.step("the event labels it", self.labelled)
        self.step("delete, then it is gone", self.deleted)
        return self.id

    def call(self, method: str, path: str, body: bytes | None = None, kind: str | None = None) -> tuple[int, Any]:
        try:
            resp = self.http.request(method, self.base + path, body=body,
                                     headers={**self.headers, **({"Content-Type": kind} if kind else {})})
        except urllib3.exceptions.HTTPError as exc:
            raise SelftestFailed(f"cannot reach the API at {self.api}: {exc}") from None
        return resp.status, json.loads(resp.data) if resp.data else None

    def step(self, name: str, action: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            said = action()
        except SelftestFailed as exc:
            raise SelftestFailed(f"{name}: {exc}") from None
        self.say(f"ok  {name:<30} {time.monotonic() - started:6.2f}s  {said}")

    def submit(self) -> str:
        status, body = self.call("POST", "/images", PHOTO.read_bytes(), "image/jpeg")
        if status != 202:
            raise SelftestFailed(f"HTTP {status} {body}")
        self.id = body["id"]
        return f"id {body['id']} -> {body['uri']}"

    def signed_upload(self) -> str:
        data = PHOTO.read_bytes()
        status, body = self.call("POST", "/uploads", json.dumps({"content_type": "image/jpeg",
                                                                 "size": len(data)}).encode(), "application/json")
        if status != 201:
            raise SelftestFailed(f"HTTP {status} {body}")
        self.id = body["id"]
        form = [*body["upload"]["fields"].items(), ("file", ("selftest.jpg", data, "image/jpeg"))]  # the file last
        try:  # to the bucket itself: no API token, the form's signature is the credential
            resp = self.http.request("POST", body["upload"]["url"], fields=form)
        except urllib3.exceptions.HTTPError as exc:
            raise SelftestFailed(f"cannot reach the bucket at {body['upload']['url']}: {exc}") from None
        if resp.status not in (200, 201, 204):
            raise SelftestFailed(f"the bucket refused the upload: HTTP {resp.status} {resp.data[:300]!r}")
        return f"id {body['id']} -> {body['uri']}"

    def labelled(self) -> str:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            status, record = self.call("GET", f"/images/{self.id}")
            if status == 200 and record["status"] != "NOT_CLASSIFIED":
                if record["status"] != "LABELED" or EXPECTED not in record["label_names"]:
                    raise SelftestFailed(f"{record['status']} {record.get('error')} {record['label_names'][:5]}")
                return f"{record['status']}: " + ", ".join(record["label_names"][:4])
            time.sleep(1)
        raise SelftestFailed(f"still NOT_CLASSIFIED after {self.timeout:.0f}s; is the event path running?")

    def found(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, page = self.call("GET", f"/search?all={EXPECTED}&limit=100")
            if status == 200 and self.id in [r["id"] for r in page["records"]]:
                return f"among {page['total']} {EXPECTED} image(s)"
            time.sleep(1)
        raise SelftestFailed(f"{self.id} is not among the results")

    def deleted(self) -> str:
        status, body = self.call("DELETE", f"/images/{self.id}")
        if status != 200:
            raise SelftestFailed(f"HTTP {status} {body}")
        status, _ = self.call("GET", f"/images/{self.id}")
        if status != 404:
            raise SelftestFailed(f"the image is still there (HTTP {status})")
        return "404 afterwards"
