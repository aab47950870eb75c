"""indexer.errors: every kind knows its exit code and HTTP status, and retries retry only what a
later try can pass (a bug is raised at once, not retried four times)."""

from __future__ import annotations

import sqlite3

import pytest

from backfill.stages import retried
from indexer.catalog import CatalogError, CatalogUnavailable, InvalidCursor
from indexer.errors import InputError, ModelError, PixdexError, SourceError, UsageError, is_transient
from indexer.images import ImageError
from indexer.sources.base import ObjectMissing, ReadError, SourceUnavailable
from indexer.sources.remote import UrlRefused


@pytest.mark.parametrize(("error", "exit_code", "status"), [
    (UsageError("x"), 2, 400), (ImageError("x"), 1, 400), (UrlRefused("x", 413), 1, 413),
    (ReadError("x"), 1, 502), (ObjectMissing("x"), 1, 502), (SourceUnavailable("x"), 1, 503),
    (CatalogError("x"), 2, 503), (InvalidCursor("x"), 2, 400), (ModelError("x"), 2, 503),
])
def test_each_kind_knows_its_exit_code_and_status(error, exit_code, status):
    assert isinstance(error, PixdexError)
    assert (error.exit_code, error.http_status) == (exit_code, status)


def test_the_kinds_sit_under_the_root():
    assert issubclass(ImageError, InputError) and issubclass(ReadError, SourceError)
    assert issubclass(SourceUnavailable, SourceError) and issubclass(CatalogUnavailable, CatalogError)


@pytest.mark.parametrize(("error", "transient"), [
    (CatalogUnavailable("timeout"), True), (SourceUnavailable("503"), True), (OSError("refused"), True),
    (sqlite3.OperationalError("database is locked"), True), (CatalogError("mapping refused"), False),
    (ImageError("truncated"), False), (TypeError("a bug"), False), (KeyError("a bug"), False),
])
def test_transient_means_a_later_try_can_pass(error, transient):
    assert is_transient(error) is transient


def _failing(errors: list[BaseException]):
    calls = []

    def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "written"

    return call, calls


def test_a_transient_failure_is_retried_until_it_passes():
    call, calls = _failing([CatalogUnavailable("429"), CatalogUnavailable("429")])
    assert retried(call, attempts=4, backoff=0) == "written" and len(calls) == 3


def test_a_bug_is_raised_at_once_not_retried():
    call, calls = _failing([TypeError("unsupported operand")])
    with pytest.raises(TypeError):
        retried(call, attempts=4, backoff=0)
    assert len(calls) == 1


def test_a_refusal_is_raised_at_once_and_a_lasting_outage_after_the_attempts():
    call, calls = _failing([CatalogError("1 of 1 writes failed: mapper_parsing_exception")])
    with pytest.raises(CatalogError):
        retried(call, attempts=4, backoff=0)
    assert len(calls) == 1
    call, calls = _failing([CatalogUnavailable("down")] * 5)
    with pytest.raises(CatalogUnavailable):
        retried(call, attempts=4, backoff=0)
    assert len(calls) == 4
