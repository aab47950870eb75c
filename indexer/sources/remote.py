"""Fetching an image from a URL a user typed, without letting the URL reach inside the network
(SSRF). The upload page and the API use it.

Rules: http or https only, no credentials in the URL; every address the host resolves to must be
public (no loopback, private, link-local, cloud metadata, carrier-grade NAT, multicast or reserved
range); the connection goes to the address that was checked (no second DNS lookup an attacker
could answer differently); redirects are followed by hand, each checked the same way; the answer
must say it is an image, be no larger than the byte limit, and arrive within the time limit.
Each refusal is a `UrlRefused` with the HTTP status an API answers with.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3

from indexer.errors import InputError
from indexer.settings import ImageLimits

MAX_REDIRECTS = 3


class UrlRefused(InputError):
    """The URL is not fetched; the message says why, `status` (= `http_status`) the HTTP status for an API."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = self.http_status = status  # the HTTP status an API answers with


@dataclass(frozen=True)
class Downloaded:
    url: str  # after redirects
    data: bytes
    content_type: str

    @property
    def name(self) -> str:
        return urlsplit(self.url).path.rsplit("/", 1)[-1] or "image"


def public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not public(embedded):
            return False
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local)


def vetted_address(host: str, port: int, allow: frozenset[str]) -> str:
    """An address of `host` to connect to, after checking every address it resolves to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UrlRefused(f"cannot resolve {host!r}", 400) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if f"{host}:{port}" not in allow and not all(public(a) for a in addresses):
        bad = next(a for a in addresses if not public(a))
        raise UrlRefused(f"{host} resolves to {bad}, a private, loopback, link-local or reserved address: "
                         f"refused", 403)
    return str(addresses[0])


class Watchdog:
    """Shuts the connections' sockets when the deadline passes, whatever they are blocked on: a
    read timeout restarts with every byte, so a server dripping its status line or headers a
    byte at a time would otherwise hold a fetch for as long as it likes."""

    def __init__(self, deadline: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    def connection_class(self, base: type) -> type:
        """`base` (a urllib3 connection class) whose sockets this watchdog watches."""
        watchdog = self

        class Watched(base):
            def connect(self) -> None:
                super().connect()
                watchdog.watch(self.sock)

        return Watched


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already
        sock.shutdown(socket.SHUT_RDWR)


def fetch_image(url: str, limits: ImageLimits, timeout: float = 10.0,
                allow: frozenset[str] = frozenset()) -> Downloaded:
    """GET an image from `url` under the rules above, within `timeout` seconds in all (connect,
    status line, headers, body, redirects). `allow`: "host:port" pairs exempt from the
    public-address check (a private deployment's own servers; tests)."""
    deadline = time.monotonic() + timeout
    with Watchdog(deadline) as watchdog:
        too_long = UrlRefused(f"{urlsplit(url).hostname} took too long: over {timeout:g} s in all", 504)
        try:
            got = _fetch(url, limits, allow, deadline, watchdog)
        except UrlRefused:
            if watchdog.fired:
                raise too_long from None
            raise
        if watchdog.fired:  # a body without a length, cut short by the watchdog: not the image
            raise too_long
        return got


def _fetch(url: str, limits: ImageLimits, allow: frozenset[str], deadline: float, watchdog: Watchdog) -> Downloaded:
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UrlRefused(f"only http and https URLs are fetched, not {parts.scheme or 'no scheme'}: {url}")
        if parts.username or parts.password:
            raise UrlRefused("URLs with a user name or password are not fetched")
        if not parts.hostname:
            raise UrlRefused(f"no host in {url!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise UrlRefused(f"bad port in {url!r}") from None
        ip = vetted_address(parts.hostname, port, allow)
        resp = _get(parts, ip, port, deadline, watchdog)
        try:
            if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                url = urljoin(url, resp.headers["Location"])  # checked again on the next turn
                continue
            if resp.status != 200:
                raise UrlRefused(f"{parts.hostname} answered HTTP {resp.status}", 502)
            kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not kind.startswith("image/"):
                raise UrlRefused(f"{url} is {kind or 'of no stated type'}, not an image", 415)
            length = resp.headers.get("Content-Length")
            if length and length.isascii() and length.isdigit() and int(length) > limits.max_bytes:
                raise UrlRefused(f"{url} is {int(length):,} bytes, over the {limits.max_bytes:,} byte limit", 413)
            return Downloaded(url, _body(resp, limits.max_bytes, deadline, url), kind)
        finally:
            resp.release_conn()
    raise UrlRefused(f"more than {MAX_REDIRECTS} redirects", 400)


def _get(parts, ip: str, port: int, deadline: float, watchdog: Watchdog) -> urllib3.BaseHTTPResponse:
    left = deadline - time.monotonic()
    if left <= 0:
        raise UrlRefused("the server took too long", 504)
    host = parts.hostname
    timeout = urllib3.Timeout(connect=min(5.0, left), read=left)
    if parts.scheme == "https":  # connect to the checked address, verify the certificate for the name
        pool = urllib3.HTTPSConnectionPool(ip, port, timeout=timeout, retries=False, cert_reqs="CERT_REQUIRED",
                                           ca_certs=certifi.where(), server_hostname=host, assert_hostname=host)
    else:
        pool = urllib3.HTTPConnectionPool(ip, port, timeout=timeout, retries=False)
    pool.ConnectionCls = watchdog.connection_class(pool.ConnectionCls)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        return pool.urlopen("GET", path, headers={"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "pixdex",
                                                  "Accept": "image/*"}, redirect=False, preload_content=False)
    except urllib3.exceptions.TimeoutError:
        raise UrlRefused(f"{host} took too long to answer", 504) from None
    except urllib3.exceptions.HTTPError as exc:
        raise UrlRefused(f"cannot fetch from {host}: {exc}", 502) from None


def _body(resp: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float, url: str) -> bytes:
    chunks, size = [], 0
    try:
        # read1: whatever has arrived, so a server dripping bytes meets the deadline too
        while chunk := resp.read1(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise UrlRefused(f"{url} is over the {max_bytes:,} byte limit", 413)
            if time.monotonic() > deadline:
                raise UrlRefused(f"{url} took too long to download", 504)
            chunks.append(chunk)
    except urllib3.exceptions.TimeoutError:
        raise UrlRefused(f"{url} took too long to download", 504) from None
    except urllib3.exceptions.HTTPError as exc:
        raise UrlRefused(f"{url}: the download broke off ({exc})", 502) from None
    return b"".join(chunks)
