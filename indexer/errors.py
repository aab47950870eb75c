"""One error root: every error pixdex raises on purpose is a `PixdexError` of one of a few kinds.

Inside, code raises the precise kind; at the edges (the CLI, the API, the Lambda handler, the
app) errors become an exit code, an HTTP status, a batch-item failure or a message on screen by
their type, never by their message text. `transient` says whether trying the same thing again
later can succeed (a store's 5xx, a lock); retries retry only those.

    PixdexError
    ├── UsageError       bad input from a person: a flag, a query, a setting   exit 2, HTTP 400
    ├── InputError       an image or request pixdex refuses (ImageError, ...)   exit 1, HTTP 400
    ├── SourceError      reading from a store failed (ReadError, ...)           exit 1, HTTP 502
    ├── CatalogError     the catalogue cannot be opened or cannot answer        exit 2, HTTP 503
    └── ModelError       the configured model cannot be loaded or run           exit 2, HTTP 503
"""

from __future__ import annotations

import sqlite3


class PixdexError(Exception):
    """The root. `exit_code` for the CLI, `http_status` for the API, `transient` for retries."""

    exit_code = 1
    http_status = 500
    transient = False


class UsageError(PixdexError):
    """Bad input from a person (a flag, a query, a setting); the message says what to change."""

    exit_code = 2
    http_status = 400


class InputError(PixdexError):
    """An image or a request that pixdex refuses as it is (empty, too large, not an image)."""

    exit_code = 1
    http_status = 400


class SourceError(PixdexError):
    """Reading from a store (a folder, a bucket, a URL) failed."""

    exit_code = 1
    http_status = 502


class CatalogError(PixdexError):
    """The catalogue cannot be opened or cannot answer; the message names the setting or input."""

    exit_code = 2
    http_status = 503


class CatalogUnavailable(CatalogError):
    """The catalogue failed for now (a timeout, 429 or 5xx, a lock held too long): retry later."""

    exit_code = 1
    transient = True


class ModelError(PixdexError):
    """The configured model cannot be loaded; the message names the setting and the file."""

    exit_code = 2
    http_status = 503


# raw errors of the OS (a connection refused, a disk full) and of SQLite (a lock held past the
# timeout) that reach a caller unwrapped: a later try may pass
OUTAGES: tuple[type[BaseException], ...] = (OSError, sqlite3.OperationalError)


def is_transient(exc: BaseException, also: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether trying the same call again later can succeed: a transient pixdex error, an OUTAGES
    one, or one of `also` (a caller's own, e.g. botocore's). Programming errors are not."""
    return (isinstance(exc, PixdexError) and exc.transient) or isinstance(exc, OUTAGES + also)
