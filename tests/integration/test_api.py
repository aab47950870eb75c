"""The image API through Powertools' resolver, fed API Gateway (REST proxy) events, with moto's
S3 over a socket and a real SQLite catalogue: submit, the event labels it, search, delete, and
each refusal with its status."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json

import pytest

from indexer.aws.api import Deps, handle
from indexer.aws.batch import build
from indexer.aws.batch import handle as handle_events
from indexer.catalog import open_catalog
from indexer.local.api_server import proxy_event
from indexer.sources.s3 import make_client


@contextlib.contextmanager
def served(deps: Deps):
    """`pixdex api`'s server in a thread, on a free port: yields (host, port)."""
    import threading

    from indexer.local.api_server import server

    httpd = server(0, deps)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[:2]
    finally:
        httpd.shutdown()
        httpd.server_close()


def over_http(address, method: str, path: str, body: bytes | str | None = None,
              content_type: str | None = None) -> tuple[int, dict[str, str], object]:
    """One request over a socket: the status, the headers, the JSON body (an empty reply raises)."""
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.request(method, path, body, {"Content-Type": content_type} if content_type else {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), json.loads(resp.read())
    finally:
        conn.close()


def call(deps: Deps, *args, **kw) -> tuple[int, object]:
    resp = handle(proxy_event(*args, **kw), deps)
    return resp["statusCode"], json.loads(resp["body"]) if resp.get("body") else None


@pytest.fixture
def api(bucket, settings):
    s = settings.model_copy(update={"upload_bucket": f"s3://{bucket.name}/incoming/"})
    with open_catalog(s.catalog, s) as catalog:
        yield Deps(s, catalog, make_client(s)), bucket


def test_submit_then_the_event_labels_it_search_finds_it_delete_removes_it(api, photos, settings):
    deps, bucket = api
    status, body = call(deps, "POST", "/images", (photos / "cat.png").read_bytes(), content_type="image/png")
    assert status == 202 and body["status"] == "NOT_CLASSIFIED"
    assert body["uri"].startswith(f"s3://{bucket.name}/incoming/api/") and body["uri"].endswith(".png")
    image_id = body["id"]
    assert call(deps, "GET", f"/images/{image_id}")[1]["status"] == "NOT_CLASSIFIED"  # GetImageLabel, before

    sync = build(settings)  # the bucket's event path: S3 -> SQS -> the indexer
    handle_events(bucket.lambda_event(bucket.messages()), sync)
    status, record = call(deps, "GET", f"/images/{image_id}")
    assert status == 200 and record["status"] == "LABELED" and "cat" in record["label_names"]

    status, found = call(deps, "GET", "/search", params={"all": "cat", "min": "0.5"})
    assert status == 200 and [r["id"] for r in found["records"]] == [image_id] and found["total"] == 1
    status, typed = call(deps, "GET", "/search", params={"q": "Cats OR dogs -beach min:50%"})  # the search box
    assert status == 200 and [r["id"] for r in typed["records"]] == [image_id], typed
    assert typed["query"] == "cat OR dog -beach min:50%" and typed["hint"] is None
    assert [(t["kind"], t["label"]) for t in typed["terms"]] == [("any", "cat"), ("any", "dog"), ("not", "beach")]
    status, typo = call(deps, "GET", "/search", params={"q": "kat"})
    assert status == 200 and typo["total"] == 0 and typo["hint"].startswith("no label `kat`; did you mean"), typo
    status, facets = call(deps, "GET", "/labels", params={"limit": "5"})
    assert status == 200 and {"label": "cat", "count": 1} in facets

    status, gone = call(deps, "DELETE", f"/images/{image_id}")
    assert status == 200 and gone["deleted"] == image_id
    assert call(deps, "GET", f"/images/{image_id}")[0] == 404
    assert "Contents" not in bucket.s3.list_objects_v2(Bucket=bucket.name, Prefix="incoming/")


@pytest.mark.parametrize(("body", "content_type", "status", "message"), [
    (json.dumps({"url": "http://169.254.169.254/latest/meta-data/"}), "application/json", 403, "link-local"),
    (json.dumps({"url": "http://localhost/cat.jpg"}), "application/json", 403, "loopback"),
    (json.dumps({"url": "ftp://example.com/cat.jpg"}), "application/json", 400, "only http and https"),
    (json.dumps({"link": "x"}), "application/json", 400, 'send {"url"'),
    ("not json", "application/json", 400, 'send {"url"'),
    (b"shopping list: milk\n" * 20, "image/jpeg", 415, "not an image"),
    (None, "image/jpeg", 400, "empty body"),
])
def test_refusals(api, body, content_type, status, message):
    deps, bucket = api
    got, answer = call(deps, "POST", "/images", body, content_type=content_type)
    assert (got, message in answer["message"]) == (status, True), answer
    assert "Contents" not in bucket.s3.list_objects_v2(Bucket=bucket.name)  # nothing stored


def test_too_large_and_bad_queries(api, photos):
    deps, _ = api
    small = deps.settings.model_copy(update={"limits": deps.settings.limits.model_copy(update={"max_bytes": 1000})})
    status, answer = call(Deps(small, deps.catalog, deps.s3), "POST", "/images", (photos / "coffee.jpg").read_bytes(),
                          content_type="image/jpeg")
    assert status == 413 and "too large" in answer["message"]
    assert call(deps, "GET", "/search", params={"min": "lots"})[0] == 400
    assert call(deps, "GET", "/search", params={"sort": "random"})[0] == 400
    assert call(deps, "GET", "/images/nope")[0] == 404
    assert call(deps, "GET", "/nowhere")[0] == 404


def test_without_an_upload_bucket_the_api_says_so(settings, photos):
    with open_catalog(settings.catalog) as catalog:
        status, answer = call(Deps(settings, catalog, None), "POST", "/images", (photos / "cat.png").read_bytes(),
                              content_type="image/png")
    assert status == 503 and "PIXDEX_UPLOAD_BUCKET" in answer["message"]


def test_delete_leaves_objects_the_api_did_not_store(api, photos, settings):
    deps, bucket = api
    bucket.put("incoming/albums/cat.png", (photos / "cat.png").read_bytes())  # a user's own upload
    handle_events(bucket.lambda_event(bucket.messages()), build(settings))
    with open_catalog(settings.catalog) as catalog:
        record = catalog.get(f"s3://{bucket.name}/incoming/albums/cat.png")
    status, body = call(deps, "DELETE", f"/images/{record.id}")
    assert status == 200 and body["object_deleted"] is False
    assert call(deps, "GET", f"/images/{record.id}")[0] == 404
    assert bucket.s3.head_object(Bucket=bucket.name, Key="incoming/albums/cat.png")["ContentLength"] > 0


def test_a_bad_cursor_is_a_bad_request(api):
    deps, _ = api
    status, body = call(deps, "GET", "/search", params={"cursor": "not-a-cursor"})
    assert status == 400 and "cursor" in body["message"]


def _send_form(upload: dict, data: bytes, name: str = "photo") -> int:
    """What a client does with POST /uploads' answer: the form's fields, then the file."""
    import requests

    return requests.post(upload["url"], data=upload["fields"], files={"file": (name, data)}, timeout=30).status_code


def test_a_large_image_goes_straight_to_the_bucket_through_a_signed_upload(api, photos, settings):
    deps, bucket = api
    data = (photos / "coffee.jpg").read_bytes()
    status, body = call(deps, "POST", "/uploads", json.dumps({"content_type": "image/jpeg", "size": len(data)}),
                        content_type="application/json")
    assert status == 201 and body["status"] == "NOT_CLASSIFIED"
    assert body["uri"].startswith(f"s3://{bucket.name}/incoming/api/") and body["uri"].endswith(".jpg")
    fields = body["upload"]["fields"]
    assert fields["Content-Type"] == "image/jpeg" and body["upload"]["expires_in"] > 0
    # what S3 enforces (moto does not): this key, this type, at most the size limit, signed
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert {"key": fields["key"]} in policy["conditions"] and {"Content-Type": "image/jpeg"} in policy["conditions"]
    assert ["content-length-range", 1, deps.settings.limits.max_bytes] in policy["conditions"]
    assert fields["x-amz-signature"] and fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert call(deps, "GET", f"/images/{body['id']}")[1]["status"] == "NOT_CLASSIFIED"

    assert _send_form(body["upload"], data) in (200, 204)  # to S3 itself, not through the API
    key = body["uri"].split("/", 3)[3]
    head = bucket.s3.head_object(Bucket=bucket.name, Key=key)
    assert (head["ContentLength"], head["ContentType"]) == (len(data), "image/jpeg")

    handle_events(bucket.lambda_event(bucket.messages()), build(settings))  # the bucket's event path
    status, record = call(deps, "GET", f"/images/{body['id']}")
    assert status == 200 and record["status"] == "LABELED" and "espresso" in record["label_names"]
    status, gone = call(deps, "DELETE", f"/images/{body['id']}")  # an API upload: the object goes too
    assert status == 200 and gone["object_deleted"] is True
    assert "Contents" not in bucket.s3.list_objects_v2(Bucket=bucket.name, Prefix="incoming/")


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"content_type": "text/plain"}, 415, "expected one of image/bmp"),
    ({}, 415, "content_type None"),
    ({"content_type": "image/png", "size": 10**10}, 413, "too large"),
    ({"content_type": "image/png", "size": "big"}, 400, '"size" must be'),
    ({"content_type": "image/png", "size": 0}, 400, '"size" must be'),
    (["image/png"], 400, "must be a JSON object"),
])
def test_signed_upload_refusals(api, body, status, message):
    deps, _ = api
    got, answer = call(deps, "POST", "/uploads", json.dumps(body), content_type="application/json")
    assert (got, message in answer["message"]) == (status, True), answer
    assert call(deps, "GET", "/search")[1]["total"] == 0  # no placeholder left behind


@pytest.mark.parametrize(("args", "kw", "status", "message"), [
    (("POST", "/images", "[" * 100_000 + "]" * 100_000), {"content_type": "application/json"}, 400,
     "not JSON pixdex reads"),
    (("POST", "/uploads", json.dumps({"content_type": ["image/jpeg"]})), {"content_type": "application/json"}, 415,
     "content_type"),
    (("POST", "/uploads", json.dumps({"content_type": {"a": 1}})), {"content_type": "application/json"}, 415,
     "content_type"),
    (("GET", "/search"), {"params": {"all": [f"label{i}" for i in range(500)]}}, 400, "at most 32 labels"),
    (("GET", "/search"), {"params": {"all": [f"label{i}" for i in range(65)]}}, 400, "at most 32 labels"),
    (("GET", "/search"), {"params": {"q": " ".join(f"label{i}" for i in range(500))}}, 400, "characters"),
    (("GET", "/search"), {"params": {"q": " ".join(f"w{i}" for i in range(100))}}, 400, "at most 32 labels"),
    (("GET", "/search"), {"params": {"q": "x" * 10_000}}, 400, "at most 1000 characters"),
    (("GET", "/search"), {"params": {"q": "flash:on"}}, 400, "no field `flash:`"),
])
def test_hostile_requests_are_refused_not_crashed_on(api, args, kw, status, message):
    deps, _ = api
    got, body = call(deps, *args, **kw)
    assert got == status and message in body["message"], body


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, 10 ** 400, 2 ** 80, True, None, "x" * 10])
def test_a_forged_cursor_of_any_shape_is_a_bad_request(api, value):
    import base64 as b64

    deps, _ = api
    forged = b64.urlsafe_b64encode(json.dumps(["date", value, "id"]).encode()).decode().rstrip("=")
    if value == "x" * 10:  # the right shape, but an id of the wrong type
        forged = b64.urlsafe_b64encode(json.dumps(["date", "2024-01-01", ["id"]]).encode()).decode().rstrip("=")
    status, body = call(deps, "GET", "/search", params={"cursor": forged})
    assert status == 400 and "invalid cursor" in body["message"], body


def test_a_client_trickling_its_request_is_cut_off_at_the_deadline(api):
    """A byte a second held its thread for as long as it kept trickling: the timeout was per read."""
    import contextlib
    import socket
    import threading
    import time

    from indexer.local.api_server import server

    deps, _ = api
    httpd = server(0, deps, client_timeout=1.0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    host, port = httpd.server_address[:2]
    try:
        with socket.create_connection((host, port), timeout=10) as slow:
            started, closed = time.monotonic(), False
            for byte in b"GET /labels HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 40:
                try:
                    slow.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                slow.settimeout(0.25)
                with contextlib.suppress(TimeoutError):
                    closed = slow.recv(1) == b""  # the server shut the connection
                if closed:
                    break
            assert closed and time.monotonic() - started < 4
        with socket.create_connection((host, port), timeout=10) as quick:  # a request in time is answered
            quick.sendall(b"GET /labels HTTP/1.1\r\nHost: x\r\n\r\n")
            assert quick.recv(12).startswith(b"HTTP/1.0 200")
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(("path", "params", "message"), [
    ("/labels", {"limit": "-1"}, "limit must be at least 1"),  # was one label, silently
    ("/search", {"limit": "0"}, "limit must be at least 1"),
    ("/search", {"since": "xx"}, "since='xx' is not a date"),  # was Python's "Invalid isoformat string"
    ("/search", {"q": ["cat", "dog"]}, "q is given more than once"),  # was the last one, silently
    ("/labels", {"min": ["0.1", "0.2"]}, "min is given more than once"),
])
def test_parameters_out_of_their_range_are_a_400_that_says_which(api, path, params, message):
    deps, _ = api
    status, body = call(deps, "GET", path, params=params)
    assert status == 400 and message in body["message"], body


def test_the_local_server_refuses_bad_bodies_and_a_slow_client_stalls_nobody(api):
    import socket
    import threading
    import time

    from indexer.local.api_server import server

    deps, _ = api
    httpd = server(0, deps)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    host, port = httpd.server_address[:2]

    def raw(request: bytes) -> bytes:
        """The whole answer: the server closes the connection after it (HTTP/1.0)."""
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(request)
            got = b""
            while chunk := s.recv(65536):
                got += chunk
            return got

    try:
        slow = socket.create_connection((host, port), timeout=10)
        slow.sendall(b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")  # and no more
        started = time.monotonic()
        answer = raw(b"GET /labels HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.0 200") and time.monotonic() - started < 2
        bad_length = raw(b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
        assert bad_length.startswith(b"HTTP/1.0 400") and b"not a number of bytes" in bad_length
        not_utf8 = b"\xff\xfe\xfa not text"
        bad_text = raw(b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                       + str(len(not_utf8)).encode() + b"\r\n\r\n" + not_utf8)
        assert bad_text.startswith(b"HTTP/1.0 400") and b"not UTF-8" in bad_text
        for request, status in ((b"PUT /images HTTP/1.1\r\nHost: x\r\n\r\n", b"501"),  # were HTML pages
                                (b"GET /" + b"x" * 70000 + b" HTTP/1.1\r\n\r\n", b"414")):
            head, _, body = raw(request).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 " + status) and b"Content-Type: application/json" in head
            assert json.loads(body)["message"]
        slow.close()
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("backend", ["sqlite", "opensearch"])
def test_the_search_box_query_on_both_backends(backend, request, settings, labeller, photos):
    """GET /search?q= reads what a person types the same way on SQLite and on the OpenSearch API."""
    from indexer.ingest.pipeline import Pipeline
    from indexer.sources.files import FileSource, find_images, source_item

    url = settings.catalog if backend == "sqlite" else request.getfixturevalue("osmem_clone").url
    s = settings.model_copy(update={"catalog": url})
    with open_catalog(url, s) as catalog:
        Pipeline(s, labeller, catalog, FileSource(s.limits)).run(source_item(p) for p in find_images([photos]))
        deps = Deps(s, catalog, None)
        names = {}
        for q in ("cats", "cat OR espresso", "cat OR espresso NOT cat", '"Egyptian cat" min:30%', "espr*", "kat"):
            status, body = call(deps, "GET", "/search", params={"q": q})
            assert status == 200, body
            names[q] = sorted(r["uri"].rsplit("/", 1)[-1] for r in body["records"])
        assert names == {"cats": ["cat.png"], "cat OR espresso": ["cat.png", "coffee.jpg"],
                         "cat OR espresso NOT cat": ["coffee.jpg"], '"Egyptian cat" min:30%': ["cat.png"],
                         "espr*": ["coffee.jpg"], "kat": []}
        assert call(deps, "GET", "/search", params={"q": "kat"})[1]["hint"].startswith("no label `kat`; did you mean")
        assert call(deps, "GET", "/search", params={"q": "cat OR"})[0] == 400


@pytest.mark.parametrize("backend", ["sqlite", "opensearch"])
def test_sort_by_date_taken_and_places_through_the_api(backend, request, settings):
    """?sort=taken pages newest taken first and undated last; near: and box: read from q."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from indexer.record import Label, Record, Status

    def photo(name, taken=None, lat=None, lon=None):
        return replace(Record(uri=f"file:///trip/{name}.jpg", status=Status.LABELED, labels=[Label("tower", 0.9)]),
                       taken_at=taken, latitude=lat, longitude=lon)

    url = settings.catalog if backend == "sqlite" else request.getfixturevalue("osmem_clone").url
    s = settings.model_copy(update={"catalog": url})
    with open_catalog(url, s) as catalog:
        catalog.upsert_many([photo("paris", datetime(2019, 5, 3, tzinfo=UTC), 48.8584, 2.2945),
                             photo("pisa", datetime(2021, 8, 1, tzinfo=UTC), 43.7230, 10.3966),
                             photo("scan-1"), photo("scan-2")])
        deps = Deps(s, catalog, None)

        def stems(body):
            return [r["uri"].rsplit("/", 1)[-1].removesuffix(".jpg") for r in body["records"]]

        status, first = call(deps, "GET", "/search", params={"sort": "taken", "limit": "3"})
        assert status == 200 and first["total"] == 4 and stems(first)[:2] == ["pisa", "paris"]
        _, rest = call(deps, "GET", "/search", params={"sort": "taken", "limit": "3", "cursor": first["next_cursor"]})
        undated = [r.uri.rsplit("/", 1)[-1].removesuffix(".jpg") for r in sorted((photo("scan-1"), photo("scan-2")),
                                                                                  key=lambda r: r.id, reverse=True)]
        assert stems(first)[2:] + stems(rest) == undated and rest["next_cursor"] is None  # undated last, by id
        _, near = call(deps, "GET", "/search", params={"q": "tower near:48.85,2.35,10km"})
        assert stems(near) == ["paris"] and near["query"] == "tower near:48.85,2.35,10km"
        _, box = call(deps, "GET", "/search", params={"q": "box:40,0,50,12 sort:taken"})
        assert stems(box) == ["pisa", "paris"]
        status, bad = call(deps, "GET", "/search", params={"q": "near:91,2,10km"})
        assert status == 400 and "latitude 91 is not between -90 and 90" in bad["message"]
        status, bad = call(deps, "GET", "/search", params={"sort": "random"})
        assert status == 400 and "one of date, confidence, taken" in bad["message"]


def test_answers_over_http_are_json_with_their_content_type(api):
    """The REST resolver puts its headers in multiValueHeaders: the local server sends them all."""
    deps, _ = api
    with served(deps) as address:
        status, headers, body = over_http(address, "GET", "/search?q=cat")
        assert (status, headers.get("Content-Type"), body["total"]) == (200, "application/json", 0)
        for path in ("/images/nope", "/nowhere"):  # a route's refusal, and no route at all
            status, headers, body = over_http(address, "GET", path)
            assert (status, headers.get("Content-Type")) == (404, "application/json") and body["message"], path
        assert list(headers).count("Content-Length") == 1


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """An environment where boto3 finds no AWS credentials at all."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_without_s3_credentials_images_and_uploads_are_a_503_and_leave_no_record(no_credentials, settings, photos):
    s = settings.model_copy(update={"upload_bucket": "s3://nobucket/api/"})
    with open_catalog(s.catalog, s) as catalog, served(Deps(s, catalog, make_client(s))) as address:
        for _ in range(2):  # and again: the server is still there
            status, headers, body = over_http(address, "POST", "/images", (photos / "coffee.jpg").read_bytes(),
                                              "image/jpeg")
            assert (status, headers.get("Content-Type")) == (503, "application/json")
            assert body["message"] == "cannot store the image: S3 failed: Unable to locate credentials", body
            status, _, body = over_http(address, "POST", "/uploads",
                                        json.dumps({"content_type": "image/png", "size": 5000}), "application/json")
            assert status == 503 and body["message"].startswith("cannot store the image: S3 failed: "), body
        status, _, found = over_http(address, "GET", "/search")
        assert (status, found["total"]) == (200, 0)  # no ghost NOT_CLASSIFIED records
        assert over_http(address, "GET", "/labels")[0] == 200


def test_a_missing_bucket_is_a_503_and_leaves_no_record(api, photos):
    deps, _ = api
    gone = Deps(deps.settings.model_copy(update={"upload_bucket": "s3://no-such-bucket-here/incoming/"}),
                deps.catalog, deps.s3)
    with served(gone) as address:
        status, headers, body = over_http(address, "POST", "/images", (photos / "cat.png").read_bytes(), "image/png")
        assert (status, headers.get("Content-Type")) == (503, "application/json")
        assert body["message"].startswith("cannot store the image: S3 failed: ") and "NoSuchBucket" in body["message"]
        assert over_http(address, "GET", "/search")[2]["total"] == 0


def test_an_unforeseen_failure_is_a_json_500_and_the_server_keeps_serving(api, photos):
    deps, _ = api
    broken = Deps(deps.settings, deps.catalog, None)  # an upload bucket, but no S3 client: an AttributeError
    with served(broken) as address:
        status, headers, body = over_http(address, "POST", "/images", (photos / "cat.png").read_bytes(), "image/png")
        assert (status, headers.get("Content-Type")) == (500, "application/json")
        assert body["message"].startswith("internal error (AttributeError)"), body
        assert "Traceback" not in body["message"]
        assert over_http(address, "GET", "/search")[2]["total"] == 0  # its placeholder went too
