"""Catalogue backends behind one interface; `open_catalog` picks one from the URL."""

from __future__ import annotations

from pathlib import Path

from indexer.catalog.base import Catalog, CatalogError, DayCount, InvalidCursor, Page, Query, Sort
from indexer.errors import CatalogUnavailable
from indexer.settings import Settings

__all__ = ["Catalog", "CatalogError", "CatalogUnavailable", "DayCount", "InvalidCursor", "Page", "Query", "Sort",
           "open_catalog"]


def open_catalog(url: str, settings: Settings | None = None, create: bool = True) -> Catalog:
    """`sqlite:///abs/path.db` (or a bare path ending in .db) or `http(s)://host:port` (OpenSearch,
    reached as `settings.opensearch` says, the alias `settings.index`). `create=False` (commands
    that only read): a SQLite file, or an OpenSearch alias, that is not there is a CatalogError,
    not a new empty catalogue made where a mistyped path or index name points."""
    if url.startswith("sqlite:///~"):
        path = Path(url.removeprefix("sqlite:///")).expanduser()
    elif url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite://"))
    elif url.startswith("sqlite://"):
        raise CatalogError(f"PIXDEX_CATALOG={url}: write sqlite:/// followed by an absolute path")
    elif url.startswith(("http://", "https://")):
        from indexer.catalog.opensearch import OpenSearchCatalog

        settings = settings or Settings()
        return OpenSearchCatalog.from_url(url, settings.opensearch, settings.index, create)
    elif url.endswith(".db") and "://" not in url:
        path = Path(url).expanduser().resolve()
    else:
        raise CatalogError(f"PIXDEX_CATALOG={url}: expected sqlite:///path.db or http(s)://host:port")
    if not create and not path.exists():
        raise CatalogError(f"no catalogue at /{str(path).lstrip('/')}: index images into it first (pixdex index DIR), "
                           "or check --catalog / PIXDEX_CATALOG")
    from indexer.catalog.sqlite import SQLiteCatalog

    return SQLiteCatalog(path)
