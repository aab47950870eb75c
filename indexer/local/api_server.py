"""The image API over plain HTTP on one machine (`pixdex api`): each request becomes the API
Gateway proxy event the Lambda would get, and goes through the same resolver. For the local stack
and the system test; in AWS, API Gateway does this part."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import logging
import socket
import threading
from urllib.parse import parse_qs, urlsplit

from indexer.aws.api import Deps, handle

TEXT = ("application/json", "text/")
logger = logging.getLogger(__name__)


def proxy_event(method: str, path: str, body: bytes | str | None = None, params: dict | None = None,
                content_type: str | None = None) -> dict:
    """An API Gateway REST (v1) proxy event; binary bodies base64-encoded, as with binary media types."""
    multi = {k: v if isinstance(v, list) else [v] for k, v in (params or {}).items()}
    binary = isinstance(body, bytes)
    return {
        "resource": path, "path": path, "httpMethod": method,
        "headers": {"content-type": content_type} if content_type else {},
        "multiValueHeaders": {"content-type": [content_type]} if content_type else {},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None, "pathParameters": None, "stageVariables": None,
        "requestContext": {"requestId": "local", "stage": "local", "httpMethod": method, "path": path},
        "body": base64.b64encode(body).decode() if binary else body, "isBase64Encoded": binary,
    }


def response_headers(resp: dict) -> list[tuple[str, str]]:
    """A Lambda proxy response's headers as API Gateway sends them: `multiValueHeaders` (where
    Powertools' REST resolver puts them all) and `headers`, a name in both sent once, from the
    former. Content-Length is the server's own."""
    multi = {name: list(values) for name, values in (resp.get("multiValueHeaders") or {}).items()}
    taken = {name.lower() for name in multi}
    for name, value in (resp.get("headers") or {}).items():
        if name.lower() not in taken:
            multi[name] = [value]
    return [(name, str(value)) for name, values in multi.items() if name.lower() != "content-length"
            for value in values]


MAX_BODY = 8 * 1024 * 1024  # API Gateway's own limit is 10 MB; Lambda takes 6 MB
CLIENT_TIMEOUT = 10.0  # seconds a client may take to send its request (headers and body)


def server(port: int, deps: Deps, host: str = "127.0.0.1",
           client_timeout: float = CLIENT_TIMEOUT) -> http.server.ThreadingHTTPServer:
    """A thread per connection, so one slow or stalled client holds only its own thread, and for
    no longer than `client_timeout` seconds to send its whole request (a client trickling a byte
    a second is cut off there, not only one that stops); the resolver itself (one module-level
    object, as in a Lambda container) answers one request at a time, once each has fully arrived."""
    resolver = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = client_timeout  # each read (StreamRequestHandler sets it on the socket)

        def setup(self) -> None:
            super().setup()
            self.arrived = False
            self.deadline = threading.Timer(client_timeout, self._too_slow)  # the whole request
            self.deadline.daemon = True
            self.deadline.start()

        def _too_slow(self) -> None:
            if not self.arrived:
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

        def finish(self) -> None:
            self.deadline.cancel()
            super().finish()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = self.headers.get("Content-Length") or "0"
            if not (length.isascii() and length.isdigit()):
                return self._refuse(400, f"Content-Length {length[:40]!r} is not a number of bytes")
            if int(length) > MAX_BODY:
                return self._refuse(413, f"the body is over the {MAX_BODY:,} byte limit")
            raw = self.rfile.read(int(length))
            self.arrived = True
            kind = self.headers.get("Content-Type", "")
            try:
                body: bytes | str | None = (raw.decode() if kind.startswith(TEXT) else raw) if raw else None
            except UnicodeDecodeError:
                return self._refuse(400, f"the {kind.split(';')[0]} body is not UTF-8 text")
            try:
                with resolver:
                    resp = handle(proxy_event(self.command, url.path, body, parse_qs(url.query), kind or None), deps)
                out = resp.get("body") or ""
                data = base64.b64decode(out) if resp.get("isBase64Encoded") else out.encode()
                status, headers = resp["statusCode"], response_headers(resp)
            except Exception:  # the resolver answers its routes' errors; this is the last resort, not a dropped reply
                logger.exception("the API failed to answer %s %s", self.command, url.path)
                return self._refuse(500, "internal error: the request failed; the details are in the server's log")
            self._send(status, data, headers)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own refusals (an unknown method, a request line too long) as the API's
            JSON, not its HTML page."""
            self.close_connection = True
            self._refuse(code, message or self.responses.get(code, ("request refused",))[0])

        def _refuse(self, status: int, message: str) -> None:
            self.arrived = True  # an answer is going out: the deadline is for the request
            self._send(status, json.dumps({"message": message}).encode(), [("Content-Type", "application/json")])

        def _send(self, status: int, data: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, fmt: str, *args: object) -> None:
            print(json.dumps({"request": fmt % args}), flush=True)

    httpd = http.server.ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    return httpd
