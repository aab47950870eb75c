"""The image API over plain HTTP on one machine (`pixdex api`): each request becomes the API
Gateway proxy event the Lambda would get, and goes through the same resolver. For the local stack
and the system test; in AWS, API Gateway does this part."""

from __future__ import annotations

import base64
import http.server
import json
from urllib.parse import parse_qs, urlsplit

from indexer.aws.api import Deps, handle

TEXT = ("application/json", "text/")


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


def server(port: int, deps: Deps, host: str = "127.0.0.1") -> http.server.HTTPServer:
    """One request at a time (the resolver is one module-level object, as in a Lambda container)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            kind = self.headers.get("Content-Type", "")
            body: bytes | str | None = (raw.decode() if kind.startswith(TEXT) else raw) if raw else None
            resp = handle(proxy_event(self.command, url.path, body, parse_qs(url.query), kind or None), deps)
            out = resp.get("body") or ""
            data = base64.b64decode(out) if resp.get("isBase64Encoded") else out.encode()
            self.send_response(resp["statusCode"])
            for name, value in (resp.get("headers") or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, fmt: str, *args: object) -> None:
            print(json.dumps({"request": fmt % args}), flush=True)

    return http.server.HTTPServer((host, port), Handler)
