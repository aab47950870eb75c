"""The image API: `indexer.aws.api.lambda_handler` behind API Gateway (REST, Lambda proxy), routed by
Powertools' APIGatewayRestResolver. The query parameters are the app's (see ui/search.py).

    POST   /images        {"url": "https://..."} or the image itself as the body -> 202 {"id", ...}
    POST   /uploads       {"content_type": "image/jpeg", "size": N} -> 201 {"id", ..., "upload": {"url", "fields"}}:
                          a pre-signed S3 POST for images over API Gateway's and Lambda's request limits
    GET    /images/{id}   the record; status NOT_CLASSIFIED until the bucket's event labels it
    GET    /search        ?q=cat OR dog -beach (the query language, indexer.query_language), and/or
                          ?all=cat&any=..&not=..&min=0.5&source=..&since=..&until=..&sort=..&limit=..&cursor=..
                          (sort: date, confidence or taken; near:/box: go in q)
                          -> {"total", "next_cursor", "records", "query", "terms", "hint"}
    GET    /labels        ?limit=50&min=0
    DELETE /images/{id}   the record, and the object when the API stored it

A submitted image goes to PIXDEX_UPLOAD_BUCKET under a generated key; the bucket's S3 -> SQS ->
Lambda path labels it like any upload. Errors are JSON `{"message": ...}` with a 4xx/5xx status:
503 when S3 fails (no credentials, unreachable, a refusal), 500 for anything unforeseen.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from indexer.catalog import Catalog, CatalogError, Query, Sort, open_catalog
from indexer.errors import PixdexError
from indexer.images import CONTENT_TYPES, ImageError, check_size, image_format
from indexer.model import vocabulary
from indexer.query_language import QueryError, hint_in, parse
from indexer.record import Record, Status
from indexer.settings import Settings
from indexer.sources.remote import fetch_image
from indexer.sources.s3 import make_client, split_s3_uri

logger = Logger(service="pixdex-api")
app = APIGatewayRestResolver()
EXTENSION = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif",
             "HEIF": "heic"}
FORMAT_OF = {kind: fmt for fmt, kind in CONTENT_TYPES.items() if fmt != "MPO"}  # image/jpeg -> JPEG, ...
UPLOAD_EXPIRES = 900  # seconds a pre-signed upload stays valid


class ApiError(PixdexError):
    """A request this API refuses, with the status it answers."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.http_status = status


@dataclass
class Deps:
    settings: Settings
    catalog: Catalog
    s3: Any


@functools.cache
def default_deps() -> Deps:
    """Once per container, from PIXDEX_* variables."""
    settings = Settings()
    return Deps(settings, open_catalog(settings.catalog, settings), make_client(settings))


def deps() -> Deps:
    return app.context.get("deps") or default_deps()


def error(status: int, message: str) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps({"message": message}))


@app.exception_handler(PixdexError)
def _refused(exc: PixdexError) -> Response:
    """Every pixdex error by its kind's status (indexer.errors); a server-side one is logged."""
    if exc.http_status < 500:
        return error(exc.http_status, str(exc))
    logger.exception("request failed", extra={"kind": type(exc).__name__})
    prefix = "the catalogue cannot answer: " if isinstance(exc, CatalogError) else ""
    return error(exc.http_status, f"{prefix}{exc}")


@app.exception_handler(Exception)
def _failed(exc: Exception) -> Response:
    """The last resort: whatever else a route raises is a JSON 500 with a short message, the
    details in the log, never a crashed handler. Powertools' own errors (a route not found, ...)
    are re-raised: the resolver answers those itself, and looks this handler up for them too."""
    if isinstance(exc, ServiceError):
        raise exc
    logger.exception("request failed unexpectedly", extra={"kind": type(exc).__name__})
    return error(500, f"internal error ({type(exc).__name__}): the request failed; the details are in the server's log")


# -- routes -----------------------------------------------------------------------------------------

@app.post("/images")
def submit() -> Response:
    d = _taking_images()
    data, source = _submitted(d.settings)
    _check_size(len(data), d.settings)
    try:
        fmt = image_format(data)  # the header only: labelling is the event path's work
    except ImageError as exc:
        raise ApiError(str(exc), 415) from None
    # the record goes in before the object exists, so the object's event always comes after it
    placeholder = _placeholder(d, fmt, len(data))
    d.catalog.upsert_many([placeholder])
    bucket, key, uri = placeholder.bucket, placeholder.key, placeholder.uri
    try:
        with _s3("store the image"):
            d.s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=CONTENT_TYPES[fmt],
                            Metadata={"pixdex-source": quote(source, safe=":/?&=%#")[:1000]})  # S3 metadata is ASCII
    except Exception:
        d.catalog.delete([placeholder.id])
        raise
    logger.info("image accepted", extra={"uri": uri, "source": source, "bytes": len(data)})
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps({"id": placeholder.id, "uri": uri, "status": str(Status.NOT_CLASSIFIED)}))


@app.post("/uploads")
def presign_upload() -> Response:
    """An image too large for a request body (Lambda takes 6 MB, so about 4.4 MB of image) goes
    straight to the bucket: the answer is a pre-signed S3 POST (the form's URL and fields, then
    the file as the last field), bound to this key, this Content-Type and the size limit."""
    d = _taking_images()
    body = _json_body('send {"content_type": "image/jpeg", "size": BYTES}')
    kind = body.get("content_type")
    if not isinstance(kind, str) or kind not in FORMAT_OF:
        raise ApiError(f"content_type {kind!r}: expected one of {', '.join(sorted(FORMAT_OF))}", 415)
    size = body.get("size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ApiError(f'"size" must be the image\'s size in bytes, not {size!r}', 400)
        _check_size(size, d.settings)
    placeholder = _placeholder(d, FORMAT_OF[kind], size)
    with _s3("store the image"):  # signed first: a failed signature leaves no record behind
        # botocore's POST signer does not check for credentials (an AttributeError without them);
        # its URL signer does (NoCredentialsError), and signs locally, without a request
        d.s3.generate_presigned_url("put_object", Params={"Bucket": placeholder.bucket, "Key": placeholder.key},
                                    ExpiresIn=UPLOAD_EXPIRES)
        post = d.s3.generate_presigned_post(
            Bucket=placeholder.bucket, Key=placeholder.key, Fields={"Content-Type": kind},
            Conditions=[{"Content-Type": kind}, ["content-length-range", 1, d.settings.limits.max_bytes]],
            ExpiresIn=UPLOAD_EXPIRES)
    d.catalog.upsert_many([placeholder])  # still before the object: the client has no form until this answer
    logger.info("upload signed", extra={"uri": placeholder.uri, "bytes": size})
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=json.dumps({
        "id": placeholder.id, "uri": placeholder.uri, "status": str(Status.NOT_CLASSIFIED),
        "upload": {"url": post["url"], "fields": post["fields"], "expires_in": UPLOAD_EXPIRES}}))


@app.get("/images/<image_id>")
def get_image(image_id: str) -> dict:
    record = deps().catalog.get(image_id)
    if record is None:
        raise ApiError(f"no image {image_id!r}", 404)
    return record.to_json()


@app.delete("/images/<image_id>")
def delete_image(image_id: str) -> dict:
    d = deps()
    record = d.catalog.get(image_id)
    if record is None:
        raise ApiError(f"no image {image_id!r}", 404)
    # what the API stored (under api/), it removes; other images' objects are not its to delete
    removed_object = bool(d.settings.upload_bucket and record.uri.startswith(d.settings.upload_uri("api")))
    if removed_object:
        with _s3("delete the image's object"):
            d.s3.delete_object(Bucket=record.bucket, Key=record.key)
    d.catalog.delete([record.id])
    return {"deleted": record.id, "uri": record.uri, "object_deleted": removed_object}


@app.get("/search")
def search() -> dict:
    q = app.current_event
    words = vocabulary.for_model(deps().settings.model)
    _once(q, ("q", "min", "source", "since", "until", "limit", "cursor", "sort"))
    try:
        base = Query(all_of=_many(q, "all"), any_of=_many(q, "any"), none_of=_many(q, "not"),
                     min_confidence=float(q.get_query_string_value("min", "0")),
                     source_prefix=q.get_query_string_value("source") or None,
                     since=_date(q.get_query_string_value("since"), "since"),
                     until=_date(q.get_query_string_value("until"), "until"),
                     limit=min(100, _whole(q.get_query_string_value("limit", "24"), "limit")),
                     cursor=q.get_query_string_value("cursor"))
        sort = q.get_query_string_value("sort")
        if sort and sort not in tuple(Sort):
            raise ApiError(f"sort={sort[:40]!r} is not a sort; one of {', '.join(Sort)}", 400)
        parsed = parse(q.get_query_string_value("q", ""), words, base, Sort(sort) if sort else None)
    except QueryError as exc:  # a UsageError: a 400 with the parser's message
        raise ApiError(str(exc), 400) from None
    except ValueError as exc:
        raise ApiError(f"bad query: {exc}", 400) from None
    catalog = deps().catalog
    page = catalog.search(parsed.query)  # a forged cursor: InvalidCursor, a 400 by its kind
    return {"total": page.total, "next_cursor": page.next_cursor, "records": [r.to_json() for r in page.records],
            "query": parsed.text(), "terms": [{"kind": str(t.kind), "typed": t.typed, "label": t.label,
                                               "known": t.known} for t in parsed.terms],
            "hint": hint_in(parsed, words, catalog)}


@app.get("/labels")
def labels() -> list:
    q = app.current_event
    _once(q, ("limit", "min"))
    try:
        limit = _whole(q.get_query_string_value("limit", "50"), "limit")
        minimum = float(q.get_query_string_value("min", "0"))
        query = Query(min_confidence=minimum)
    except ValueError as exc:
        raise ApiError(f"bad query: {exc}", 400) from None
    return [{"label": n, "count": c} for n, c in deps().catalog.facets(query, size=max(1, min(limit, 1000)))]


# -- helpers --------------------------------------------------------------------------------------

def _taking_images() -> Deps:
    d = deps()
    if not d.settings.upload_bucket:
        raise ApiError("this deployment takes no images: PIXDEX_UPLOAD_BUCKET is not set", 503)
    return d


def _placeholder(d: Deps, fmt: str, size: int | None) -> Record:
    """A NOT_CLASSIFIED record under a new key in the API's area, not yet written. The caller
    writes it before the object can exist, so the object's event always comes after it and never
    finds a stale placeholder."""
    uri = d.settings.upload_uri("api", f"{uuid.uuid4().hex}.{EXTENSION[fmt]}")
    bucket, key = split_s3_uri(uri)
    return Record(uri=uri, status=Status.NOT_CLASSIFIED, bucket=bucket, key=key, size=size,
                  content_type=CONTENT_TYPES[fmt], format=fmt)


@contextlib.contextmanager
def _s3(doing: str) -> Iterator[None]:
    """S3's failures (no credentials, unreachable, a refusal) as a 503 that says what failed and why."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise ApiError(f"cannot {doing}: S3 failed: {exc}", 503) from exc


def _json_body(hint: str) -> dict:
    try:
        body = json.loads(app.current_event.decoded_body or "")
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise ApiError(f"the body is not JSON pixdex reads: {hint}", 400) from None
    if not isinstance(body, dict):
        raise ApiError(f"the body must be a JSON object: {hint}", 400)
    return body


def _submitted(settings: Settings) -> tuple[bytes, str]:
    """The image bytes from the body (base64 from API Gateway's binary support) or from {"url": ...}."""
    event = app.current_event
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    kind = (headers.get("content-type") or "").lower()
    if kind.startswith("application/json"):
        hint = 'send {"url": "https://..."} or the image itself as the body'
        url = _json_body(hint).get("url")
        if url is None:
            raise ApiError(f"no \"url\": {hint}", 400)
        if not isinstance(url, str):
            raise ApiError('"url" must be a string', 400)
        got = fetch_image(url, settings.limits, settings.url_timeout, frozenset(settings.url_allow))
        return got.data, got.url
    if not event.body:
        raise ApiError('empty body: send {"url": "https://..."} or the image itself', 400)
    if not event.is_base64_encoded:  # API Gateway base64-encodes the binary media types (image/*)
        raise ApiError("send the image with an image/* Content-Type, or JSON {\"url\": ...}", 415)
    return base64.b64decode(event.body), "body"


def _check_size(size: int, settings: Settings) -> None:
    try:
        check_size(size, settings.limits)
    except ImageError as exc:
        raise ApiError(str(exc), 413 if size else 400) from None


def _many(event, name: str) -> tuple[str, ...]:
    """A repeated query parameter's words, each as the label it means (indexer.model.vocabulary)."""
    words = vocabulary.for_model(deps().settings.model)
    return words.resolve_all(event.get_multi_value_query_string_values(name) or [])


def _whole(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value[:40]!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be at least 1, not {number}")
    return number


def _date(value: str | None, name: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        raise ValueError(f"{name}={value[:40]!r} is not a date: write {name}=2024-06-01 or 2024-06-01T12:00") from None


def _once(event, names: tuple[str, ...]) -> None:
    """A parameter that takes one value, given twice (?q=cat&q=dog), is a 400, not its last value."""
    for name in names:
        if len(event.get_multi_value_query_string_values(name) or []) > 1:
            raise ApiError(f"{name} is given more than once: give it once (the labels params all, any and not "
                           "may repeat)", 400)


def handle(event: dict, deps: Deps | None = None, context: LambdaContext | None = None) -> dict:
    """The API without the Lambda decorations; tests and local servers pass their own Deps."""
    if deps is not None:
        app.append_context(deps=deps)
    return app.resolve(event, context)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return handle(event, context=context)
