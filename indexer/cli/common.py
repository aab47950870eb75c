"""What every command shares: exit codes, argument types, record output, and one stop-on-signal helper."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from indexer.catalog import Catalog
from indexer.exif import BIDI_CONTROLS
from indexer.record import Record

OK, ITEMS_FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130
# What a terminal would obey rather than show, in a value from a file name, an image or an old
# record: C0 and C1 controls (ESC sequences, BEL, a newline that forges a line), DEL, the bidi
# controls, and lone surrogates (a name that is not UTF-8, which print cannot encode).
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}\ud800-\udfff]")
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{BIDI_CONTROLS}\ud800-\udfff]")  # json escapes C0


def catalog_option(p: argparse.ArgumentParser) -> None:
    """`--catalog` after the command too (`pixdex search cat --catalog sqlite:///...`), unlisted there."""
    p.add_argument("--catalog", metavar="URL", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def device_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--device`, which overrides PIXDEX_DEVICE."""
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (PIXDEX_DEVICE)")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_int_up_to(maximum: int, why: str) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to `maximum`; `why` says what the bound is for."""
    def parse(text: str) -> int:
        value = positive_int(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:,} ({why}), got {value:,}")
        return value

    return parse


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON array of records (README: 'The record')")
    p.add_argument("--embedding", action="store_true", help="with --json: include the embedding vectors")


def printable(text: object) -> str:
    """`text` with what a terminal would obey written out: ESC as \\x1b, U+202E as \\u202e."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", str(text))


def printable_lines(text: object) -> str:
    """`printable`, line by line: a message of several lines (a settings error) stays several,
    each one after the first indented, so that no quoted line can pass for one of pixdex's own."""
    return "\n  ".join(printable(line) for line in str(text).splitlines() or [""])


def json_text(value: object) -> str:
    """JSON with non-ASCII text as it reads (café, not caf\\u00e9), but with the characters a
    terminal would obey as \\u escapes: json.dumps escapes only C0 controls when ensure_ascii is off.
    The same JSON to a parser: outside strings JSON is ASCII, so each escape lands inside one."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m[0]):04x}", json.dumps(value, indent=2, ensure_ascii=False))


def print_json(records: list[Record], with_embedding: bool) -> None:
    print(json_text([r.to_json(with_embedding) for r in records]))


def record_line(r: Record, focus: tuple[str, ...]) -> str:
    """One record for a person, escaped (printable)."""
    return printable(f"{r.id}  {r.label_summary(3, focus):<48}  {r.uri}")


def find_record(catalog: Catalog, ref: str) -> Record | None:
    """By id or URI, else by the path of an indexed file (which may no longer exist)."""
    from indexer.sources.files import file_uri

    record = catalog.get(ref)
    if record is None and "://" not in ref:
        record = catalog.get(file_uri(Path(ref)))
    return record


def not_found(ref: str) -> int:
    """Say so; the exit code for a missing item."""
    print(f"pixdex: no image {ref!r} in the catalogue", file=sys.stderr)
    return ITEMS_FAILED


def say(line: str) -> None:
    """A status line for a person: stderr, so stdout stays the command's data (what a terminal
    would obey in a file name or an error quoted in it written out)."""
    print(printable(line), file=sys.stderr, flush=True)


class StopOnSignal:
    """SIGINT and SIGTERM set `event` (a long-running command then finishes what it holds and
    stops); `on_stop` hears the signal's name first. A signal in `hard` arriving once `event` is
    set (a second Ctrl-C) raises KeyboardInterrupt at once. The previous handlers come back on exit.

        with StopOnSignal(lambda name: say(f"{name}: stopping")) as stop:
            watcher.run(stop.event)
    """

    def __init__(self, on_stop: Callable[[str], None] | None = None,
                 hard: tuple[signal.Signals, ...] = (signal.SIGINT,)) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None  # the first signal's name, once one came
        self._on_stop, self._hard = on_stop, hard
        self._previous: dict[signal.Signals, object] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set() and signum in self._hard:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        self.signal_name = self.signal_name or name
        self.event.set()
        if self._on_stop:
            self._on_stop(name)

    def __enter__(self) -> StopOnSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
