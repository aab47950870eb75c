"""Images by URL (indexer.sources.remote) against real local HTTP servers: what is fetched, and every
way a URL is refused (SSRF rules, redirects, type, size, time), each with its HTTP status."""

from __future__ import annotations

import time

import pytest

from indexer.settings import ImageLimits
from indexer.sources.remote import UrlRefused, fetch_image
from tests.conftest import StandIn, http_server

LIMITS = ImageLimits(max_bytes=200_000)


class Handler(StandIn):
    photo = b""

    def do_GET(self):
        route = {
            "/cat.jpg": (200, "image/jpeg", self.photo, {}),
            "/page.html": (200, "text/html; charset=utf-8", b"<html>hello</html>", {}),
            "/huge.jpg": (200, "image/jpeg", b"\xff" * 300_000, {}),
            "/missing.jpg": (404, "text/plain", b"no", {}),
            "/to-metadata": (302, "text/plain", b"", {"Location": "http://169.254.169.254/latest/meta-data/"}),
            "/to-cat": (301, "text/plain", b"", {"Location": "/cat.jpg"}),
            "/loop": (302, "text/plain", b"", {"Location": "/loop"}),
        }
        if self.path == "/slow.jpg":
            time.sleep(2)
        if self.path == "/drip-status":  # the status line and headers a byte at a time, for ever
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n" * 50:
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)
            return
        if self.path == "/drip.jpg":  # a byte at a time, each well inside a read timeout
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)
            return
        status, kind, body, headers = route.get(self.path, (200, "image/jpeg", self.photo, {}))
        self.reply(status, body, kind, headers)


@pytest.fixture(scope="module")
def server(photos):
    Handler.photo = (photos / "coffee.jpg").read_bytes()
    with http_server(Handler) as url:
        yield url.removeprefix("http://")  # host:port, as the allow-list names servers


def fetch(url: str, allow: str | None = None, timeout: float = 5.0):
    return fetch_image(url, LIMITS, timeout=timeout, allow=frozenset([allow] if allow else []))


def test_an_image_is_fetched_and_a_redirect_followed(server, photos):
    got = fetch(f"http://{server}/cat.jpg", allow=server)
    assert got.data == (photos / "coffee.jpg").read_bytes() and got.content_type == "image/jpeg"
    assert fetch(f"http://{server}/to-cat", allow=server).url.endswith("/cat.jpg")


@pytest.mark.parametrize(("url", "status", "message"), [
    ("ftp://example.com/cat.jpg", 400, "only http and https"),
    ("file:///etc/passwd", 400, "only http and https"),
    ("http://user:secret@example.com/cat.jpg", 400, "user name or password"),
    ("http:///cat.jpg", 400, "no host"),
    ("http://127.0.0.1/cat.jpg", 403, "127.0.0.1, a private, loopback"),
    ("http://localhost:8080/cat.jpg", 403, "loopback"),
    ("http://10.1.2.3/cat.jpg", 403, "private"),
    ("http://192.168.0.10/cat.jpg", 403, "private"),
    ("http://169.254.169.254/latest/meta-data/", 403, "link-local"),
    ("http://100.64.0.1/cat.jpg", 403, "refused"),  # carrier-grade NAT
    ("http://[::1]/cat.jpg", 403, "refused"),
    ("http://[::ffff:127.0.0.1]/cat.jpg", 403, "refused"),
    ("http://0.0.0.0/cat.jpg", 403, "refused"),
    ("http://[2002:a9fe:a9fe::1]/cat.jpg", 403, "refused"),  # 6to4 around 169.254.169.254
    ("http://no-such-host.invalid/cat.jpg", 400, "cannot resolve"),
])
def test_refused_urls_name_the_problem(url, status, message):
    with pytest.raises(UrlRefused, match=message) as err:
        fetch(url)
    assert err.value.status == status


def test_the_local_test_server_itself_is_refused_without_the_exemption(server):
    with pytest.raises(UrlRefused, match="refused") as err:
        fetch(f"http://{server}/cat.jpg")
    assert err.value.status == 403


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/to-metadata", 403, "169.254.169.254"),  # a redirect is checked like the first URL
    ("/page.html", 415, "text/html, not an image"),
    ("/huge.jpg", 413, "over the 200,000 byte limit"),
    ("/missing.jpg", 502, "answered HTTP 404"),
    ("/loop", 400, "more than 3 redirects"),
])
def test_answers_that_are_refused(server, path, status, message):
    with pytest.raises(UrlRefused, match=message) as err:
        fetch(f"http://{server}{path}", allow=server)
    assert err.value.status == status


def test_a_slow_server_times_out(server):
    started = time.monotonic()
    with pytest.raises(UrlRefused, match="too long") as err:
        fetch(f"http://{server}/slow.jpg", allow=server, timeout=0.5)
    assert err.value.status == 504 and time.monotonic() - started < 1.8


def test_a_server_dripping_bytes_meets_the_deadline(server):
    started = time.monotonic()
    with pytest.raises(UrlRefused, match="too long") as err:
        fetch(f"http://{server}/drip.jpg", allow=server, timeout=1.0)
    assert err.value.status == 504 and time.monotonic() - started < 2.5


def test_a_server_dripping_its_status_line_meets_the_deadline_too(server):
    started = time.monotonic()
    with pytest.raises(UrlRefused, match="took too long: over 1 s in all") as err:
        fetch(f"http://{server}/drip-status", allow=server, timeout=1.0)
    assert err.value.status == 504 and time.monotonic() - started < 2.0
