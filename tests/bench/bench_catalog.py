"""The catalogue backends side by side: bulk indexing docs/s, and search latency (a label filter
plus its facets, what the app's search page asks) p50/p95, for SQLite and for the OpenSearch API
served by osmem-server (an in-memory test server on this machine, not a tuned OpenSearch cluster).
Both backends get the same N records (default 20k: osmem slows down as nested docs pile up, see
the README); SQLite is then measured once more at --n-sqlite records (default 100k).
Benchmarks print; they never assert.

Run:  make bench   or   .venv/bin/python tests/bench/bench_catalog.py --n 20000 --n-sqlite 100000
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import opensearch_target, pct, query_labels, records  # the same records for both backends

from indexer.catalog import Catalog, Query, open_catalog
from indexer.catalog.opensearch import OpenSearchCatalog
from indexer.settings import Settings

BATCH = 1000


def load(catalog: Catalog, n: int, embedding_dim: int | None = None) -> float:
    """Docs/s writing n records in batches of BATCH."""
    batch, started = [], time.perf_counter()
    for r in records(n, embedding_dim=embedding_dim):
        batch.append(r)
        if len(batch) == BATCH:
            catalog.upsert_many(batch)
            batch = []
    catalog.upsert_many(batch)
    return n / (time.perf_counter() - started)


def latencies(catalog: Catalog, labels: list[str], rounds: int) -> list[float]:
    out = []
    for i in range(rounds + 5):
        query = Query(all_of=(labels[i % len(labels)],), min_confidence=0.2, limit=24)
        t = time.perf_counter()
        catalog.search(query)
        catalog.facets(query, size=30)
        if i >= 5:  # warm-up
            out.append(time.perf_counter() - t)
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="records in both backends (default 20000)")
    parser.add_argument("--n-sqlite", type=int, default=100_000, help="records for a SQLite-only row (0: none)")
    parser.add_argument("--opensearch", metavar="URL",
                        help="a real cluster instead of osmem-server (PIXDEX_OPENSEARCH__* for auth); "
                             "writes the indices bench-images and bench-emb")
    parser.add_argument("--rounds", type=int, default=60, help="timed searches (default 60)")
    parser.add_argument("--n-embedding", type=int, default=2000, help="records with 1280-d embeddings (default 2000)")
    args = parser.parse_args()
    common, rare = query_labels(args.n)
    labels = [x for pair in zip(common, rare, strict=False) for x in pair]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        url, os_name = opensearch_target(args.opensearch, stack)
        settings = Settings(index="bench-images", opensearch={"refresh": "false"})
        backends = {"SQLite": open_catalog(f"sqlite:///{tmp}/bench.db"), os_name: open_catalog(url, settings)}
        for name, catalog in backends.items():
            docs_s = load(catalog, args.n)
            if isinstance(catalog, OpenSearchCatalog):
                catalog.client.indices.refresh(index=catalog.alias)
            lat = latencies(catalog, labels, args.rounds)
            total = catalog.search(Query()).total
            emb = open_catalog(f"sqlite:///{tmp}/emb.db") if name == "SQLite" else \
                open_catalog(url, settings.model_copy(update={"index": "bench-emb"}))
            emb_docs_s = load(emb, args.n_embedding, embedding_dim=1280)
            rows[name] = (docs_s, emb_docs_s, pct(lat, 0.5), pct(lat, 0.95), total)
            print(f"{name}: {total} records loaded", file=sys.stderr)
        big = None
        if args.n_sqlite:
            sqlite = open_catalog(f"sqlite:///{tmp}/big.db")
            big = (load(sqlite, args.n_sqlite), latencies(sqlite, labels, args.rounds))
    print(f"catalogue backends, {args.n} synthetic records (ImageNet labels + parents, 2% FAILED), batches of {BATCH}")
    print(f"search = one label filter at min confidence 0.2 (10 common, 10 rare labels) + its top-30 facets, "
          f"{args.rounds} rounds")
    print(f"{'backend':<32}{'bulk docs/s':>12}{'with 1280-d emb':>17}{'search p50 ms':>15}{'p95 ms':>9}")
    for name, (docs_s, emb_docs_s, p50, p95, total) in rows.items():
        print(f"{name + f' ({total})':<32}{docs_s:>12.0f}{emb_docs_s:>17.0f}{p50:>15.1f}{p95:>9.1f}")
    if big:
        p50, p95 = pct(big[1], 0.5), pct(big[1], 0.95)
        print(f"{f'SQLite ({args.n_sqlite})':<32}{big[0]:>12.0f}{'':>17}{p50:>15.1f}{p95:>9.1f}")
    (a, b) = rows.values()
    print(f"ratio OpenSearch/SQLite: bulk {b[0] / a[0]:.2f}, with embeddings {b[1] / a[1]:.2f}, "
          f"search p50 {b[2] / a[2]:.2f}, p95 {b[3] / a[3]:.2f}")


if __name__ == "__main__":
    main()
