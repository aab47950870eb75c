"""Synthetic catalogue records for benchmarks: real ImageNet class names and their parent concepts,
a long-tailed class distribution, softmax-like confidences, 60 days of indexing, 2% failures; and
what the catalogue benchmarks share: the labels they query, percentiles, the OpenSearch target."""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np

from indexer.model.taxonomy import Taxonomy
from indexer.record import Label, Record, Status

START = datetime(2026, 9, 1, tzinfo=UTC)


def records(n: int, seed: int = 7, embedding_dim: int | None = None) -> Iterator[Record]:
    rng = random.Random(seed)
    taxonomy = Taxonomy.imagenet()
    classes = list(range(len(taxonomy.names)))
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(classes))]  # a few classes are very common
    vectors = np.random.default_rng(seed)
    for i in range(n):
        indexed_at = START + timedelta(seconds=rng.uniform(0, 60 * 86400))
        uri = f"s3://bench-photos/{i // 1000:03d}/img{i:07d}.jpg"
        if rng.random() < 0.02:
            yield Record(uri=uri, status=Status.FAILED, error=rng.choice(["not an image", "truncated or corrupt"]),
                         indexed_at=indexed_at, model_id="efficientnet-lite0@bench")
            continue
        top = rng.choices(classes, weights)[0]
        others = rng.sample(classes, 4)
        confs = sorted((rng.uniform(0.3, 0.95), *(rng.uniform(0.0, 0.1) for _ in others)), reverse=True)
        labels = [Label(taxonomy.names[c], conf, parents=taxonomy.parents[c])
                  for c, conf in zip([top, *others], confs, strict=True)]
        concepts: dict[str, float] = {}
        for lb in labels:
            for p in lb.parents:
                concepts[p] = concepts.get(p, 0.0) + lb.confidence
        labels += [Label(p, min(c, 1.0)) for p, c in concepts.items() if c >= 0.15]
        emb = None
        if embedding_dim:
            v = vectors.standard_normal(embedding_dim).astype(np.float32)
            emb = v / np.linalg.norm(v)
        yield Record(uri=uri, status=Status.LABELED, labels=labels, indexed_at=indexed_at, size=3_000_000,
                     width=4000, height=3000, format="JPEG", content_type="image/jpeg", embedding=emb,
                     bucket="bench-photos", key=uri.split("/", 3)[3], model_id="efficientnet-lite0@bench")


def query_labels(n: int) -> tuple[list[str], list[str]]:
    """10 common labels and 10 rare ones (seen under 5 times) among the first min(n, 5000) records."""
    counts = Counter(lb.name for r in records(min(n, 5000)) for lb in r.labels)
    common = [name for name, _ in counts.most_common(10)]
    return common, random.Random(1).sample([name for name, c in counts.items() if c < 5], 10)


def pct(values: list[float], p: float) -> float:
    """The p-quantile of seconds, in ms (nearest rank); nan for no values."""
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))] * 1000


def opensearch_target(url: str | None, stack: contextlib.ExitStack) -> tuple[str, str]:
    """(url, name): the cluster given, else a fresh osmem-server clone that `stack` stops."""
    if url:
        return url, "OpenSearch"
    from osmem_server import OsmemServer

    server = stack.enter_context(OsmemServer.start())
    return stack.enter_context(server.clone()).url, "OpenSearch API (osmem)"
