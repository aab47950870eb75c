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

import urllib3

PHOTO = files("indexer.data") / "selftest.jpg"  # the espresso photo: labelled "espresso" at 0.95
EXPECTED = "espresso"


class SelftestFailed(AssertionError):
    pass


def run(api: str, timeout: float = 120.0, token: str | None = None, say: Callable[[str], None] = print) -> str:
    """Returns the id of the last image that went through; raises SelftestFailed naming the step."""
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30), retries=False)
    headers = {"Authorization": token} if token else {}
    base = api.rstrip("/")

    def call(method: str, path: str, body: bytes | None = None, kind: str | None = None,
             fields: dict | None = None) -> tuple[int, object]:
        try:
            resp = http.request(method, base + path, body=body, fields=fields,
                                headers={**headers, **({"Content-Type": kind} if kind else {})})
        except urllib3.exceptions.HTTPError as exc:
            raise SelftestFailed(f"cannot reach the API at {api}: {exc}") from None
        return resp.status, json.loads(resp.data) if resp.data else None

    def step(name: str, action: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            said = action()
        except SelftestFailed as exc:
            raise SelftestFailed(f"{name}: {exc}") from None
        say(f"ok  {name:<30} {time.monotonic() - started:6.2f}s  {said}")

    state: dict[str, str] = {}

    def submit() -> str:
        status, body = call("POST", "/images", PHOTO.read_bytes(), "image/jpeg")
        if status != 202:
            raise SelftestFailed(f"HTTP {status} {body}")
        state["id"] = body["id"]
        return f"id {body['id']} -> {body['uri']}"

    def signed_upload() -> str:
        data = PHOTO.read_bytes()
        status, body = call("POST", "/uploads", json.dumps({"content_type": "image/jpeg", "size": len(data)}).encode(),
                            "application/json")
        if status != 201:
            raise SelftestFailed(f"HTTP {status} {body}")
        state["id"] = body["id"]
        form = [*body["upload"]["fields"].items(), ("file", ("selftest.jpg", data, "image/jpeg"))]  # the file last
        try:  # to the bucket itself: no API token, the form's signature is the credential
            resp = http.request("POST", body["upload"]["url"], fields=form)
        except urllib3.exceptions.HTTPError as exc:
            raise SelftestFailed(f"cannot reach the bucket at {body['upload']['url']}: {exc}") from None
        if resp.status not in (200, 201, 204):
            raise SelftestFailed(f"the bucket refused the upload: HTTP {resp.status} {resp.data[:300]!r}")
        return f"id {body['id']} -> {body['uri']}"

    def labelled() -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, record = call("GET", f"/images/{state['id']}")
            if status == 200 and record["status"] != "NOT_CLASSIFIED":
                if record["status"] != "LABELED" or EXPECTED not in record["label_names"]:
                    raise SelftestFailed(f"{record['status']} {record.get('error')} "
                                         f"{record['label_names'][:5]}")
                return f"{record['status']}: " + ", ".join(record["label_names"][:4])
            time.sleep(1)
        raise SelftestFailed(f"still NOT_CLASSIFIED after {timeout:.0f}s; is the event path running?")

    def found() -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, page = call("GET", f"/search?all={EXPECTED}&limit=100")
            if status == 200 and state["id"] in [r["id"] for r in page["records"]]:
                return f"among {page['total']} {EXPECTED} image(s)"
            time.sleep(1)
        raise SelftestFailed(f"{state['id']} is not among the results")

    def deleted() -> str:
        status, body = call("DELETE", f"/images/{state['id']}")
        if status != 200:
            raise SelftestFailed(f"HTTP {status} {body}")
        status, _ = call("GET", f"/images/{state['id']}")
        if status != 404:
            raise SelftestFailed(f"the image is still there (HTTP {status})")
        return "404 afterwards"

    step("submit an image", submit)
    step("the event labels it", labelled)
    step(f"search {EXPECTED!r} finds it", found)
    step("delete, then it is gone", deleted)
    step("a signed upload to the bucket", signed_upload)
    step("the event labels it", labelled)
    step("delete, then it is gone", deleted)
    return state["id"]
