"""Copies of a photo in any catalogue, through the Catalog interface: exact copies share their bytes
(`content_hash`, the sha256 the pipeline takes of the bytes it read), near copies (resized,
re-encoded, mirrored) have embeddings whose cosine is at least NEAR_THRESHOLD.

`find` compares every distinct content with every other in numpy blocks of BLOCK embeddings, kept
as float16 (2.5 KiB an image: 250 MiB at 100k) and compared in float32 (one BLOCK x BLOCK score
block at a time, 64 MiB), within each embedding space (the classifier that made them). Linked
contents are grouped (connected components), each group led by the member most linked to others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from indexer.catalog.base import Catalog, Query
from indexer.errors import UsageError
from indexer.record import Record

# Cosine of the embeddings, chosen on copies of the 144 validation photos (tests/bench/bench_duplicates.py):
# at 0.90, 100% of mirrored copies, 99% of those re-encoded at quality 60 or shrunk to 400 px, and 90%
# of those at half size are found (the misses: photos of 300-460 px halved to below the model's 224 px
# input), while the two closest different photos (the Matterhorn at night, a snowy mountain) stay at
# 0.82 and no pair of different photos is grouped below 0.82. Mirrored copies need no embedding of
# their own: the lowest of them scores 0.909 against its photo.
NEAR_THRESHOLD = 0.90
MIN_THRESHOLD = 0.5  # under it most photos would be "copies" of most others: refused, not listed
BLOCK = 4096  # embeddings compared at once with each block of as many
MAX_PAIRS = 2_000_000  # linked pairs kept (about 40 MB); more says the threshold is too low for this catalogue
EXACT, NEAR = "exact", "near"

Progress = Callable[[str, int, int], None]  # (stage: "reading" | "comparing", done, total)


@dataclass(frozen=True)
class Group:
    """Records that are copies of each other; `ids[0]` leads, `similarity[i]` is the cosine of
    `ids[i]`'s embedding to the leader's (1.0 for the leader and for exact copies of either)."""

    kind: str  # EXACT (the same bytes) or NEAR
    ids: tuple[str, ...]
    similarity: tuple[float, ...]

    @property
    def lowest(self) -> float:
        return min(self.similarity)


@dataclass
class Found:
    exact: list[Group] = field(default_factory=list)
    near: list[Group] = field(default_factory=list)
    records: int = 0
    without_hash: int = 0  # indexed before content hashes were taken: relabelling fills them
    compared: int = 0  # distinct contents compared by embedding
    threshold: float = NEAR_THRESHOLD
    seconds: float = 0.0


class _Space:
    """The distinct contents of one embedding space, their embeddings in float16 blocks."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.ids: list[str] = []  # per content: the record that stands for it
        self.blocks: list[np.ndarray] = []

    def add(self, id_: str, embedding: np.ndarray) -> None:
        at = len(self.ids) % BLOCK
        if at == 0:
            self.blocks.append(np.empty((BLOCK, self.dim), dtype=np.float16))
        self.blocks[-1][at] = embedding
        self.ids.append(id_)

    def block(self, i: int) -> np.ndarray:
        rows = min(BLOCK, len(self.ids) - i * BLOCK)
        return self.blocks[i][:rows].astype(np.float32)

    def vector(self, i: int) -> np.ndarray:
        return self.blocks[i // BLOCK][i % BLOCK].astype(np.float32)


def check_threshold(threshold: float) -> float:
    if not MIN_THRESHOLD <= threshold <= 1.0:
        raise UsageError(f"a near-duplicate threshold is a cosine from {MIN_THRESHOLD} to 1, not {threshold:g} "
                         f"(default {NEAR_THRESHOLD}: tests/bench/bench_duplicates.py)")
    return threshold


def find(catalog: Catalog, threshold: float = NEAR_THRESHOLD, exact_only: bool = False,
         progress: Progress | None = None) -> Found:
    """The catalogue's exact copies (by content hash), then, unless `exact_only`, its near copies
    (by embedding, at `threshold` or more), largest groups first."""
    check_threshold(threshold)
    started = time.perf_counter()
    progress = progress or (lambda *_: None)
    total = catalog.search(Query(limit=1)).total
    found = Found(threshold=threshold)
    by_hash: dict[str, list[str]] = {}
    spaces: dict[tuple[str | None, int], _Space] = {}
    standing: set[str] = set()  # content hashes that have a record in a space already
    for id_, content_hash, model, embedding in catalog.fingerprints(embeddings=not exact_only):
        found.records += 1
        if found.records % 1000 == 0:
            progress("reading", found.records, max(total, found.records))
        if content_hash is None:
            found.without_hash += 1
        else:
            by_hash.setdefault(content_hash, []).append(id_)
        if embedding is None or (content_hash is not None and content_hash in standing):
            continue  # no embedding, or the same bytes as a content already in (an exact copy)
        if content_hash is not None:
            standing.add(content_hash)
        spaces.setdefault((model, len(embedding)), _Space(len(embedding))).add(id_, embedding)
    progress("reading", found.records, found.records)
    found.exact = sorted((Group(EXACT, tuple(ids), (1.0,) * len(ids)) for ids in by_hash.values() if len(ids) > 1),
                         key=lambda g: (-len(g.ids), g.ids[0]))
    if not exact_only:
        copies = {ids[0]: ids for ids in by_hash.values()}  # each content's records, by the first one
        content_of = {i: ids[0] for ids in by_hash.values() for i in ids}
        work = sum(_pairs_of_blocks(len(s.ids)) for s in spaces.values())
        done = 0
        for space in spaces.values():
            found.compared += len(space.ids)
            def step(n: int, before: int = done) -> None:
                progress("comparing", before + n, work)

            groups, links = _linked(space, threshold, step)
            records = catalog.get_many([space.ids[i] for g in groups for i in g])
            found.near += [_with_copies(_led(g, space, links, records), space, copies, content_of) for g in groups]
            done += _pairs_of_blocks(len(space.ids))
        found.near.sort(key=lambda g: (-len(g.ids), g.ids[0]))
    found.seconds = time.perf_counter() - started
    return found


def _pairs_of_blocks(n: int) -> int:
    blocks = -(-n // BLOCK)
    return blocks * (blocks + 1) // 2


def _linked(space: _Space, threshold: float, progress: Callable[[int], None]) -> tuple[list[list[int]], np.ndarray]:
    """The groups of contents linked at `threshold` or more (indices into `space`), and how many
    others each content is linked to."""
    n = len(space.ids)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links = np.zeros(n, dtype=np.int64)
    kept = 0
    step = 0
    for bi in range(len(space.blocks)):
        rows = space.block(bi)
        for bj in range(bi, len(space.blocks)):
            linked = rows @ (rows if bj == bi else space.block(bj)).T >= threshold
            if bj == bi:
                linked = np.triu(linked, 1)  # each pair once, no content with itself
            a, b = np.nonzero(linked)
            kept += len(a)
            if kept > MAX_PAIRS:
                raise UsageError(f"more than {MAX_PAIRS:,} pairs of images are at cosine {threshold:g} or more: "
                                 f"the threshold is too low for this catalogue (default {NEAR_THRESHOLD})")
            a, b = a + bi * BLOCK, b + bj * BLOCK
            np.add.at(links, a, 1)
            np.add.at(links, b, 1)
            for x, y in zip(a.tolist(), b.tolist(), strict=True):
                rx, ry = root(x), root(y)
                if rx != ry:
                    parent[max(rx, ry)] = min(rx, ry)
            step += 1
            progress(step)
    members: dict[int, list[int]] = {}
    for i in np.flatnonzero(links).tolist():
        members.setdefault(root(i), []).append(i)
    return list(members.values()), links


def _led(group: list[int], space: _Space, links: np.ndarray, records: dict[str, Record]) -> list[tuple[int, float]]:
    """A group's contents with their cosine to its leader, leader first: the content linked to the
    most others, then the one with the most pixels and bytes (the original, more often than not)."""
    def rank(i: int) -> tuple:
        r = records.get(space.ids[i])
        return links[i], (r.width or 0) * (r.height or 0) if r else 0, (r.size or 0) if r else 0, -i

    leader = max(group, key=rank)
    sims = np.stack([space.vector(i) for i in group]) @ space.vector(leader)
    ranked = sorted(zip(group, sims.tolist(), strict=True), key=lambda x: (x[0] != leader, -x[1], x[0]))
    return [(i, 1.0 if i == leader else min(1.0, s)) for i, s in ranked]


def _with_copies(group: list[tuple[int, float]], space: _Space, copies: dict[str, list[str]],
                 content_of: dict[str, str]) -> Group:
    """A near group of contents as records: each content's record and its exact copies."""
    ids, sims = [], []
    for i, sim in group:
        id_ = space.ids[i]
        for copy in copies.get(content_of.get(id_, id_), [id_]):
            ids.append(copy)
            sims.append(round(sim, 4))
    return Group(NEAR, tuple(ids), tuple(sims))


def exact_copies(catalog: Catalog, record: Record, limit: int = 100) -> list[Record]:
    """The other records of the same bytes, by id."""
    if not record.content_hash:
        return []
    return [r for r in catalog.same_content(record.content_hash, limit + 1) if r.id != record.id][:limit]
