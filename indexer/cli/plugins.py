"""The one way a command joins `pixdex`: a `Command`, whether built in or from another package.

A command module provides one `Command` per command: its name and help, a function that adds its
arguments to its parser, one that turns the parsed arguments into the command's own options (a
dataclass, or the namespace itself for a simple command), the settings those options override,
and the run function that takes the options and the settings and returns the exit code. The
`pixdex` parser is built from them; nothing reads a command's flags by attribute name.

Another package adds commands through the `pixdex.commands` entry point group, each entry naming
a `Command` (backfill's `pyproject.toml` line: `backfill = "backfill.cli:COMMAND"`). indexer
imports none of them: imports flow into indexer, never out of it. An entry whose package is not
installed (the Lambda image ships indexer only) is left out; any other import error is raised.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from indexer.settings import Settings

ENTRY_POINTS = "pixdex.commands"
OptionsT = TypeVar("OptionsT")


def as_parsed(args: argparse.Namespace) -> Any:
    """The options of a simple command: its parsed arguments as they are."""
    return args


def no_overrides(_options: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Command(Generic[OptionsT]):
    """One `pixdex NAME` command."""

    name: str
    help: str  # one line, in `pixdex --help`
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[OptionsT, Settings], int]  # the work; returns the exit code, raises indexer.errors kinds
    options: Callable[[argparse.Namespace], OptionsT] = as_parsed  # the parsed arguments -> its options
    settings: Callable[[OptionsT], dict[str, Any]] = no_overrides  # Settings fields its options override
    description: str | None = None  # `pixdex NAME --help`; the help line when absent
    epilog: str | None = None
    verbatim: bool = False  # description and epilog keep their own line breaks
    # its own arguments rewritten before they are parsed (`pixdex search dog -beach`: -beach is a word)
    rewrite: Callable[[list[str]], list[str]] | None = None

    def add_to(self, sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
        """Its parser, under `pixdex`, with the options every command takes (`parents`)."""
        formatter = argparse.RawDescriptionHelpFormatter if self.verbatim else argparse.HelpFormatter
        p = sub.add_parser(self.name, parents=parents, help=self.help, description=self.description or self.help,
                           epilog=self.epilog, formatter_class=formatter)
        self.add_arguments(p)
        p.set_defaults(_command=self)


def installed() -> Iterator[Command]:
    """Commands of other installed packages, by entry point name."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINTS), key=lambda ep: ep.name):
        try:
            command = ep.load()
        except ModuleNotFoundError as exc:  # declared but not shipped (the Lambda image has indexer only)
            if exc.name == ep.module.split(".")[0]:
                continue
            _broken(ep, f"{type(exc).__name__}: {exc}")  # a real import error inside the command's package
            continue
        except Exception as exc:  # the other commands still work; say which one does not
            _broken(ep, f"{type(exc).__name__}: {exc}")
            continue
        if not isinstance(command, Command):
            _broken(ep, "it is not an indexer.cli.plugins.Command")
            continue
        yield command


def _broken(ep: Any, why: str) -> None:
    print(f"pixdex: warning: the command {ep.name!r} ({ep.value}, {ENTRY_POINTS}) cannot be loaded: {why}",
          file=sys.stderr)
