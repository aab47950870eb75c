"""`pixdex duplicates`: the catalogue's copies, exact (the same bytes) and near (resized,
re-encoded, mirrored: indexer.catalog.duplicates)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from indexer.catalog import open_catalog
from indexer.catalog.duplicates import NEAR_THRESHOLD, Found, Group, check_threshold, find
from indexer.cli.common import OK, json_text, printable, say
from indexer.cli.plugins import Command
from indexer.errors import UsageError
from indexer.record import Record
from indexer.settings import Settings

EPILOG = f"""\
Exact copies have the same bytes (the sha256 pixdex takes as it reads them); near copies are
resized, re-encoded or mirrored ones, whose embeddings' cosine is at least --threshold (default
{NEAR_THRESHOLD}, chosen on copies of the validation photos: README, "Duplicates"). Each near group
is led by its first, and lists every member's cosine to it: --threshold or more. Images indexed
before pixdex took content hashes have none until relabelled (pixdex index --force, pixdex
backfill --relabel)."""


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    try:
        return check_threshold(value)
    except UsageError as exc:  # a message argparse prints with the usage line
        raise argparse.ArgumentTypeError(str(exc)) from None


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=_threshold, default=NEAR_THRESHOLD, metavar="COSINE",
                   help=f"near copies at this cosine or more (default {NEAR_THRESHOLD})")
    p.add_argument("--exact-only", action="store_true", help="only copies with the same bytes (reads no embedding)")
    p.add_argument("--json", action="store_true", help="print the groups as JSON")


class _Bars:
    """A progress bar on stderr per stage, shown only on a terminal and after a second."""

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            unit = "img" if stage == "reading" else "block"
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit=unit, delay=1.0, disable=None,
                                          dynamic_ncols=True, file=sys.stderr, leave=False)
        bar.total = total
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def duplicates(args: argparse.Namespace, settings: Settings) -> int:
    bars = _Bars()
    with open_catalog(settings.catalog, settings) as catalog:
        try:
            found = find(catalog, args.threshold, args.exact_only, bars)
        finally:
            bars.close()
        wanted = [i for g in found.exact + found.near for i in g.ids]
        records = catalog.get_many(list(dict.fromkeys(wanted)))
    if found.without_hash:
        say(f"pixdex: {found.without_hash} of {found.records} records have no content hash yet (indexed before "
            f"pixdex took them), so their exact copies are not known: pixdex index --force PATH or pixdex backfill "
            f"--relabel fills them")
    if args.json:
        print(json_text(as_json(found, records, args.exact_only)))
    elif not found.exact and not found.near:
        near = "" if args.exact_only else f", nor near copies at cosine {found.threshold:g} or more"
        among = "1 record" if found.records == 1 else f"{found.records} records"
        print(f"no copies among {among}: no two have the same bytes{near}")
    else:
        _print_groups(found, records, args.exact_only)
    return OK


def _member(id_: str, similarity: float, records: dict[str, Record]) -> dict[str, Any]:
    r = records.get(id_)  # None: deleted since it was read
    return {"id": id_, "uri": r.uri if r else None, "similarity": similarity,
            "width": r.width if r else None, "height": r.height if r else None, "size": r.size if r else None}


def as_json(found: Found, records: dict[str, Record], exact_only: bool = False) -> dict[str, Any]:
    """{records, threshold, without_content_hash, seconds, exact: [...], near: [...]}: each group with
    its records (id, uri, similarity to the group's first, width, height, size). The threshold is
    null where none applied (exact copies only)."""
    def group(g: Group) -> dict[str, Any]:
        first = records.get(g.ids[0])
        out: dict[str, Any] = {"records": [_member(i, s, records) for i, s in zip(g.ids, g.similarity, strict=True)]}
        if g.kind == "exact":
            out = {"content_hash": first.content_hash if first else None, **out}
        else:
            out = {"similarity": g.lowest, **out}
        return out

    return {"records": found.records, "threshold": None if exact_only else found.threshold,
            "without_content_hash": found.without_hash, "seconds": round(found.seconds, 3),
            "exact": [group(g) for g in found.exact], "near": [group(g) for g in found.near]}


def _groups(n: int) -> str:
    return f"{n} group" if n == 1 else f"{n} groups"


def _print_groups(found: Found, records: dict[str, Record], exact_only: bool) -> None:
    def uri(id_: str) -> str:
        r = records.get(id_)
        return printable(r.uri) if r else "(deleted since)"

    count = sum(len(g.ids) for g in found.exact)
    print(f"exact copies (the same bytes): {_groups(len(found.exact))}, {count} records")
    for n, g in enumerate(found.exact, 1):
        print(f"  {n}. {len(g.ids)} records")
        for id_ in g.ids:
            print(f"     {id_}  {uri(id_)}")
    if exact_only:
        return
    count = sum(len(g.ids) for g in found.near)
    print(f"near copies (cosine {found.threshold:g} or more): {_groups(len(found.near))}, {count} records")
    for n, g in enumerate(found.near, 1):
        print(f"  {n}. {len(g.ids)} records, lowest similarity {g.lowest:.3f}")
        for id_, sim in zip(g.ids, g.similarity, strict=True):
            print(f"     {sim:.3f}  {id_}  {uri(id_)}")


COMMANDS = [
    Command("duplicates", "copies: the same bytes, and resized, re-encoded or mirrored ones", _arguments,
            duplicates, epilog=EPILOG, verbatim=True),
]
