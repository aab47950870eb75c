"""Copies of a photo in any catalogue, through the Catalog interface: exact copies share their bytes
(`content_hash`, the sha256 the pipeline takes of the bytes it read), near copies (resized,
re-encoded, mirrored) have embeddings whose cosine is at least NEAR_THRESHOLD.

`find` compares every distinct content with every other in numpy blocks of BLOCK embeddings, kept
as float16 (2.5 KiB an image: 250 MiB at 100k) and compared in float32 (one BLOCK x BLOCK score
block at a time, 64 MiB), within each embedding space (the classifier that made them): once to
count each content's links (no pair is kept), then between the linked ones and the leaders chosen
among them. A near group is a leader and the contents at the threshold or more to it (`_led`), so
that no member of a group is further than that from its first, however long a burst of similar
photos runs.
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
EXACT, NEAR = "exact", "near"

Progress = Callable[[str, int, int], None]  # (stage: "reading" | "comparing", done, total)


@dataclass(frozen=True)
class Group:
    """Records that are copies of each other; `ids[0]` leads, `similarity[i]` is the cosine of
    `ids[i]`'s embedding to the leader's, at the threshold or more (1.0 for the leader and its exact
    copies; a member's exact copies have that member's)."""

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

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """The embeddings of these contents, in float32."""
        out = np.empty((len(indices), self.dim), dtype=np.float32)
        of_block = indices // BLOCK
        for b in np.unique(of_block).tolist():
            here = of_block == b
            out[here] = self.blocks[b][indices[here] % BLOCK]
        return out


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

            links = _links(space, threshold, step)
            records = catalog.get_many([space.ids[i] for i in np.flatnonzero(links).tolist()])
            found.near += [_with_copies(g, space, copies, content_of) for g in _led(space, threshold, links, records)]
            done += _pairs_of_blocks(len(space.ids))
        found.near.sort(key=lambda g: (-len(g.ids), g.ids[0]))
    found.seconds = time.perf_counter() - started
    return found


def _pairs_of_blocks(n: int) -> int:
    blocks = -(-n // BLOCK)
    return blocks * (blocks + 1) // 2


def _links(space: _Space, threshold: float, progress: Callable[[int], None]) -> np.ndarray:
    """How many other contents each content of `space` is at `threshold` or more to. Only the counts
    are kept, never the pairs: memory is one score block whatever the threshold."""
    links = np.zeros(len(space.ids), dtype=np.int64)
    step = 0
    for bi in range(len(space.blocks)):
        rows = space.block(bi)
        for bj in range(bi, len(space.blocks)):
            linked = rows @ (rows if bj == bi else space.block(bj)).T >= threshold
            if bj == bi:
                linked = np.triu(linked, 1)  # each pair once, no content with itself
            links[bi * BLOCK:bi * BLOCK + len(rows)] += linked.sum(axis=1)
            links[bj * BLOCK:bj * BLOCK + linked.shape[1]] += linked.sum(axis=0)
            step += 1
            progress(step)
    return links


def _led(space: _Space, threshold: float, links: np.ndarray,
         records: dict[str, Record]) -> list[list[tuple[int, float]]]:
    """The near groups of `space` (indices, with their cosine to the leader, leader first), each a
    leader and the contents at `threshold` or more to it: not connected components, which chain (a
    burst, a time-lapse) into groups whose ends are not copies of each other.

    Linked contents are taken in rank order: the most linked to others, then the most pixels and
    bytes (the original, more often than not), then the first read. One that no leader before it
    reaches becomes a leader, so leaders are never copies of each other; every other one joins the
    leader it is closest to (the earlier on a tie). A leader nothing joined stays alone. Each
    (content, leader) cosine is computed once, in blocks of BLOCK of each, so that the one that
    made a content a follower is the one it is grouped by."""
    def rank(i: int) -> tuple:
        r = records.get(space.ids[i])
        return -links[i], -((r.width or 0) * (r.height or 0) if r else 0), -((r.size or 0) if r else 0), i

    order = np.array(sorted(np.flatnonzero(links).tolist(), key=rank), dtype=np.int64)
    n = len(order)
    best = np.full(n, -np.inf, dtype=np.float32)  # per position in `order`: its closest leader's cosine
    closest = np.full(n, -1, dtype=np.int64)  # ... and that leader's position
    leaders: list[int] = []  # positions in `order`, in rank order

    def meet(at: np.ndarray, scores: np.ndarray, of: np.ndarray) -> None:
        """Positions `at`, scored (len(at), len(of)) against the leaders at positions `of`."""
        if not scores.size:
            return
        top = scores.argmax(axis=1)  # the first, so the earlier leader on a tie
        score = scores[np.arange(len(at)), top]
        better = score > best[at]
        best[at[better]], closest[at[better]] = score[better], of[top[better]]

    for start in range(0, n, BLOCK):
        here = np.arange(start, min(n, start + BLOCK))
        rows = space.rows(order[here])
        for ls in range(0, len(leaders), BLOCK):  # the leaders of earlier blocks
            of = np.array(leaders[ls:ls + BLOCK])
            meet(here, rows @ space.rows(order[of]).T, of)
        covered = best[here] >= threshold
        among = rows @ rows.T
        new = []
        for k in range(len(here)):  # in rank order: a leader reaches those after it in this block
            if not covered[k]:
                new.append(k)
                covered |= among[k] >= threshold
        mine = np.array(new, dtype=np.int64)
        meet(here, among[mine].T, here[mine])
        earlier = np.arange(start)
        for cs in range(0, start, BLOCK):  # the new leaders against the contents of earlier blocks
            at = earlier[cs:cs + BLOCK]
            meet(at, (space.rows(order[here[mine]]) @ space.rows(order[at]).T).T, here[mine])
        leaders += here[mine].tolist()
    is_leader = np.zeros(n, dtype=bool)
    is_leader[leaders] = True
    followers: dict[int, list[tuple[int, float]]] = {}
    for pos in np.flatnonzero(~is_leader & (best >= threshold)).tolist():
        followers.setdefault(int(closest[pos]), []).append((int(order[pos]), min(1.0, float(best[pos]))))
    return [[(int(order[lead]), 1.0), *sorted(members, key=lambda x: (-x[1], x[0]))]
            for lead, members in sorted(followers.items())]


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
