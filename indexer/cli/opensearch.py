"""OpenSearch upkeep: `pixdex reindex` (a new index with this version's mapping) and
`pixdex dashboards import` (the bundled saved objects)."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from indexer.catalog import open_catalog
from indexer.cli.common import ITEMS_FAILED, OK, catalog_option, say
from indexer.cli.plugins import Command
from indexer.errors import UsageError
from indexer.settings import Settings

DASHBOARDS = Path(str(resources.files("indexer.data") / "dashboards.ndjson"))  # package data: works from a wheel


def reindex(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.catalog.opensearch import OpenSearchCatalog

    with open_catalog(settings.catalog, settings) as catalog:
        if not isinstance(catalog, OpenSearchCatalog):
            raise UsageError(f"reindex is for an OpenSearch catalogue; {settings.catalog} is not one")
        old, new = catalog.reindex()
        # what only the bytes can give (content hash, EXIF) a copy cannot fill in: relabelling reads them
        older = sum(1 for _, content_hash, _, _ in catalog.fingerprints(embeddings=False) if not content_hash)
    print(f"alias {settings.index}: {old} -> {new} (the old index is kept)")
    if older:
        were = "1 record was" if older == 1 else f"{older:,} records were"
        print(f"{were} indexed before content hashes and EXIF were read; `pixdex backfill SOURCE "
              "--relabel-model-older` (or `pixdex index --force PATH`) reads their bytes again and fills them")
    return OK


def _dashboards_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(title="actions", required=True, metavar="ACTION")
    d = actions.add_parser("import", help="import the saved objects")
    d.add_argument("url", metavar="URL", help="OpenSearch Dashboards, e.g. http://localhost:5601")
    d.add_argument("--file", type=Path, default=DASHBOARDS, help="saved objects NDJSON (default: the bundled set)")
    catalog_option(d)


def dashboards_import(args: argparse.Namespace, settings: Settings) -> int:
    import requests

    if not args.file.is_file():
        raise UsageError(f"no saved objects file {args.file}")
    url = args.url.rstrip("/") + "/api/saved_objects/_import"
    try:
        with args.file.open("rb") as f:
            resp = requests.post(url, params={"overwrite": "true"}, headers={"osd-xsrf": "true"},
                                 auth=settings.opensearch.basic_auth(), verify=settings.opensearch.tls_verify(),
                                 files={"file": (args.file.name, f, "application/ndjson")}, timeout=60)
    except requests.RequestException as exc:
        raise UsageError(f"cannot reach OpenSearch Dashboards at {args.url}: {exc}") from None
    body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
    if resp.status_code != 200 or not body.get("success"):
        errors = body.get("errors") or body.get("message") or resp.text[:300]
        say(f"pixdex: error: Dashboards refused the import (HTTP {resp.status_code}): {errors}")
        return ITEMS_FAILED
    print(f"imported {body.get('successCount', 0)} saved objects into {args.url}; open the 'pixdex overview' dashboard")
    return OK


COMMANDS = [
    Command("reindex", "OpenSearch: rebuild the index with the current mapping, swap the alias",
            lambda p: None, reindex,
            description="Copy every record into a new OpenSearch index created with this version's mapping, then "
                        "move the alias (PIXDEX_INDEX) to it in one atomic step: searches never see a missing or "
                        "half-filled index. The old index is kept; delete it once satisfied."),
    Command("dashboards", "OpenSearch Dashboards: import pixdex's index pattern, charts and dashboard",
            _dashboards_arguments, dashboards_import,
            description="Import the bundled saved objects (the index pattern on the alias, four visualisations, "
                        "the 'pixdex overview' dashboard) through the Dashboards saved-objects API, replacing "
                        "earlier copies. Basic auth from PIXDEX_OPENSEARCH__USER/PASSWORD."),
]
