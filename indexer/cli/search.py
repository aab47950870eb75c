"""Reading the catalogue: `pixdex search`, `labels`, `show`, `similar`, and `delete`."""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from datetime import datetime

from indexer.catalog import Query, Sort, open_catalog
from indexer.catalog.base import MAX_LIMIT
from indexer.cli.common import (
    ITEMS_FAILED,
    OK,
    add_json,
    find_record,
    not_found,
    positive_int,
    positive_int_up_to,
    print_json,
    printable,
    record_line,
)
from indexer.cli.plugins import Command
from indexer.model import vocabulary
from indexer.query_language import GRAMMAR, hint_in, parse
from indexer.record import Status
from indexer.settings import Settings

MAX_LABELS = 10_000  # `pixdex labels --limit`: a catalogue of photos holds a few thousand


def _as_word(arg: str) -> str:
    """`-beach` (no option of `pixdex search`, which has only long ones and -h) -> the word `NOT beach`."""
    return f"NOT {arg[1:]}" if re.fullmatch(r"-[^\W\d_][^\s]*", arg) and arg != "-h" else arg


def _search_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="WORD",
                   help="the query, as typed into the app's search box (the grammar is below)")
    p.add_argument("--any", action="append", default=[], metavar="LABEL", help="at least one of these (repeatable)")
    p.add_argument("--not", dest="none", action="append", default=[], metavar="LABEL",
                   help="none of these (repeatable)")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="X",
                   help="0..1, applies to each matched label (default 0)")
    p.add_argument("--text", help="a word prefix of a label name, e.g. 'espr'")
    p.add_argument("--status", choices=[s.value for s in Status])
    p.add_argument("--source", metavar="PREFIX", help="URI prefix, e.g. file:///home/me/photos/")
    p.add_argument("--since", type=datetime.fromisoformat, metavar="DATE", help="indexed on or after (ISO date)")
    p.add_argument("--until", type=datetime.fromisoformat, metavar="DATE", help="indexed before (ISO date)")
    p.add_argument("--sort", choices=[s.value for s in Sort],
                   help="date: newest indexed first; confidence: best match first; taken: newest taken first, "
                        "photos without a date taken last (default: confidence when labels are searched, else date)")
    p.add_argument("--limit", type=page_size, default=20, help=f"records per page (default 20, at most {MAX_LIMIT:,})")
    p.add_argument("--cursor", help="the next-page cursor printed by the previous page")
    add_json(p)


def page_size(text: str) -> int:
    value = positive_int(text)
    if value > MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"a page holds at most {MAX_LIMIT:,} records, not {value}: page on with "
                                         "--cursor")
    return value


def search(args: argparse.Namespace, settings: Settings) -> int:
    words = vocabulary.for_model(settings.model)  # what a typed word means: butterflies -> butterfly
    base = Query(any_of=words.resolve_all(args.any), none_of=words.resolve_all(args.none),
                 min_confidence=args.min_confidence, text=args.text,
                 status=Status(args.status) if args.status else None,
                 source_prefix=args.source, since=args.since, until=args.until,
                 limit=args.limit, cursor=args.cursor)
    parsed = parse(" ".join(args.words), words, base, Sort(args.sort) if args.sort else None)
    query = parsed.query
    with open_catalog(settings.catalog, settings, create=False) as catalog:
        page = catalog.search(query)
        unknown = hint_in(parsed, words, catalog)
    if unknown:
        print(f"pixdex: {printable(unknown)}", file=sys.stderr)
    if args.json:
        print_json(page.records, args.embedding)
    else:
        for r in page.records:
            print(record_line(r, query.matched_labels))
    shown = f"{len(page.records)} of {page.total} image{'s' if page.total != 1 else ''}"
    more = f"; next page: --cursor {page.next_cursor}" if page.next_cursor else ""
    print(shown + more, file=sys.stderr)  # stderr, so --json output stays a plain array
    return OK


def _labels_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=positive_int_up_to(MAX_LABELS, "labels listed"), default=50,
                   help=f"how many labels (default 50, at most {MAX_LABELS:,})")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="X")
    add_json(p)


def labels(args: argparse.Namespace, settings: Settings) -> int:
    with open_catalog(settings.catalog, settings, create=False) as catalog:
        facets = catalog.facets(Query(min_confidence=args.min_confidence), size=args.limit + 1)
    more, facets = len(facets) > args.limit, facets[:args.limit]
    if args.json:
        print(json.dumps([{"label": n, "count": c} for n, c in facets], indent=2))
    else:
        for name, count in facets:
            print(printable(f"{count:>7}  {name}"))
    if more:  # never a silent cut: say there are more, and how to see them
        print(f"the {args.limit} most common labels shown; there are more: --limit N", file=sys.stderr)
    return OK


def _one_record_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="ID|URI|PATH")
    add_json(p)


def show(args: argparse.Namespace, settings: Settings) -> int:
    with open_catalog(settings.catalog, settings, create=False) as catalog:
        record = find_record(catalog, args.ref)
    if record is None:
        return not_found(args.ref)
    if args.json:
        print_json([record], args.embedding)
        return OK

    def line(text: str) -> None:  # a file name, an image's EXIF or an old record cannot drive the terminal
        print(printable(text))

    line(record.uri)
    line(f"  id        {record.id}")
    line(f"  status    {record.status}")
    if record.error:
        line(f"  error     {record.error}")
    if record.width:
        line(f"  image     {record.width}x{record.height} {record.format}, {record.size} bytes")
    line(f"  model     {record.model_id}")
    line(f"  indexed   {record.indexed_at:%Y-%m-%d %H:%M:%S} UTC")
    if record.faces:
        line(f"  faces     {len(record.faces)}")
    if record.taken_at:
        line(f"  taken     {record.taken_at:%Y-%m-%d %H:%M:%S} UTC")
    shot = [record.camera, record.lens, record.focal_length and f"{record.focal_length:g} mm",
            record.f_number and f"f/{record.f_number:g}", record.exposure_time and _exposure(record.exposure_time),
            record.iso and f"ISO {record.iso}"]
    if any(shot):
        line(f"  camera    {', '.join(str(x) for x in shot if x)}")
    if record.latitude is not None and record.longitude is not None:
        altitude = f", {record.altitude:g} m" if record.altitude is not None else ""
        line(f"  location  {record.latitude:.6f}, {record.longitude:.6f}{altitude}")
    for lb in sorted(record.labels, key=lambda lb: -lb.confidence):
        parents = f"  ({', '.join(lb.parents)})" if lb.parents else ""
        line(f"  {lb.confidence:6.1%}  {lb.name} [{lb.source}]{parents}")
    return OK


def _exposure(seconds: float) -> str:
    return f"1/{round(1 / seconds)} s" if seconds < 1 else f"{seconds:g} s"


def _similar_arguments(p: argparse.ArgumentParser) -> None:
    _one_record_arguments(p)
    p.add_argument("-k", type=positive_int_up_to(MAX_LIMIT, "a page of records"), default=10,
                   help=f"how many (default 10, at most {MAX_LIMIT:,})")


def similar(args: argparse.Namespace, settings: Settings) -> int:
    with open_catalog(settings.catalog, settings, create=False) as catalog:
        record = find_record(catalog, args.ref)
        if record is None:
            return not_found(args.ref)
        hits = catalog.similar(record.id, k=args.k)
    if args.json:
        print(json.dumps([{**r.to_json(args.embedding), "similarity": round(s, 4)} for r, s in hits], indent=2))
    else:
        for r, s in hits:
            print(f"{s:6.3f}  {record_line(r, ())}")
    return OK


def _delete_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("refs", nargs="+", metavar="ID|URI|PATH")


def delete(args: argparse.Namespace, settings: Settings) -> int:
    failed = 0
    with open_catalog(settings.catalog, settings, create=False) as catalog:
        for ref in args.refs:
            record = find_record(catalog, ref)
            if record is None:
                not_found(ref)
                failed += 1
                continue
            catalog.delete([record.id])
            print(printable(f"deleted {record.uri}"))
    return ITEMS_FAILED if failed else OK


COMMANDS = [
    Command("search", "find images by label", _search_arguments, search,
            description=textwrap.fill(
                "Find images by label, with the query you would type into the app's search box; with no words, "
                "every record is listed, newest first. Labels include parent concepts (cat, dog, vehicle, food, "
                "...), scenes (beach, mountain, lake, snow, street, indoor), people (person, people, portrait), "
                "and properties (black and white, colours, panorama). Words match case- and accent-insensitively, "
                "and plurals, synonyms and aliases mean their label. A word that is no label gets a 'did you "
                "mean' on stderr.", 100),
            epilog=GRAMMAR + "\n\n" + textwrap.fill(
                "pixdex search dog -beach works as typed: a -word that is no option of this command means NOT "
                "word. Quote what the shell would read itself: pixdex search 'cat | dog', 'label:\"a b\"'.", 100),
            verbatim=True, rewrite=lambda args: [_as_word(a) for a in args]),
    Command("labels", "every label with its image count", _labels_arguments, labels),
    Command("show", "one record: labels, metadata, status", _one_record_arguments, show),
    Command("similar", "images that look alike (cosine over embeddings)", _similar_arguments, similar),
    Command("delete", "remove records from the catalogue (the files stay)", _delete_arguments, delete),
]
