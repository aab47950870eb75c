"""`pixdex`: index, search and inspect the catalogue. Exit codes: 0 ok, 1 some items failed, 2 bad usage.

The parser is built from the commands of the modules below (each a list of `Command`) and of
installed plugins (indexer.cli.plugins). Errors become exit codes here, by their kind
(indexer.errors), and a one-line message; no traceback reaches the screen.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import traceback
import warnings

from indexer.cli import duplicates, index, model, opensearch, search, services
from indexer.cli.common import INTERRUPTED, ITEMS_FAILED, OK, USAGE, catalog_option, printable_lines
from indexer.cli.plugins import Command, installed
from indexer.errors import PixdexError
from indexer.settings import Settings

# in `pixdex --help` order
BUILT_IN: list[Command] = [index.INDEX, *search.COMMANDS, *duplicates.COMMANDS, index.WATCH, *opensearch.COMMANDS,
                           *services.COMMANDS, *model.COMMANDS]


def main(argv: list[str] | None = None) -> int:
    """`pixdex ...`: the built-in commands and every installed plugin's."""
    return execute(build_parser(), argv)


def main_of(command: Command, prog: str, argv: list[str] | None = None) -> int:
    """One command as a program of its own (`python -m backfill SOURCE` == `pixdex backfill SOURCE`)."""
    formatter = argparse.RawDescriptionHelpFormatter if command.verbatim else argparse.HelpFormatter
    parser = argparse.ArgumentParser(prog=prog, description=command.description or command.help,
                                     epilog=command.epilog, formatter_class=formatter)
    parser.add_argument("--catalog", metavar="URL", help="sqlite:///abs/path.db or http(s)://host:port "
                                                         "(overrides PIXDEX_CATALOG)")
    command.add_arguments(parser)
    parser.set_defaults(_command=command)
    return execute(parser, argv)


def execute(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse, build the settings, run the command; errors become exit codes by their kind."""
    args = parser.parse_args(_rewritten(parser, sys.argv[1:] if argv is None else argv))
    command: Command = args._command
    # pixdex checks the pixel count itself (ImageLimits.max_pixels, 150 MP by default), so Pillow's
    # warning above 89 MP says nothing to a user of this command line
    warnings.filterwarnings("ignore", message="Image size .* could be decompression bomb")
    try:
        options = command.options(args)
        overrides = {k: v for k, v in command.settings(options).items() if v is not None}
        if args.catalog is not None:
            overrides["catalog"] = args.catalog
        return command.run(options, Settings(**overrides))
    except PixdexError as exc:
        print(f"pixdex: error: {printable_lines(exc)}", file=sys.stderr)  # it may quote what was typed or found
        return exc.exit_code
    except ValueError as exc:  # a setting or an argument out of range (pydantic, Query)
        print(f"pixdex: error: {printable_lines(exc)}", file=sys.stderr)
        return USAGE
    except BrokenPipeError:  # `pixdex show ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return OK
    except (OSError, sqlite3.Error) as exc:  # disk full, catalogue locked too long, ...
        print(f"pixdex: error: {printable_lines(exc)}; what was written stays", file=sys.stderr)
        return ITEMS_FAILED
    except KeyboardInterrupt:
        print("pixdex: interrupted; what was written stays, run the same command again to finish", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # a bug: one line on screen, the traceback only when asked for
        if os.environ.get("PIXDEX_DEBUG"):
            traceback.print_exc()
        print(f"pixdex: internal error: {type(exc).__name__}: {printable_lines(exc)} (a bug in pixdex; PIXDEX_DEBUG=1 "
              "shows where)",
              file=sys.stderr)
        return ITEMS_FAILED


def _rewritten(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """argv with the arguments after a command's name rewritten by that command (Command.rewrite)."""
    commands = {c.name: c for c in parser.get_default("_commands") or []}
    for i, arg in enumerate(argv):
        command = commands.get(arg)
        if command is not None:
            return argv[:i + 1] + command.rewrite(argv[i + 1:]) if command.rewrite else argv
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixdex",
        description="Label images with a PyTorch classifier and search them by label.",
        epilog="The catalogue comes from --catalog or PIXDEX_CATALOG (default: a SQLite file in your data folder). "
               "Exit codes: 0 ok, 1 some items failed or were not found, 2 bad usage.",
    )
    parser.add_argument("--catalog", metavar="URL", help="sqlite:///abs/path.db (overrides PIXDEX_CATALOG)")
    after = argparse.ArgumentParser(add_help=False)
    catalog_option(after)
    sub = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    commands = [*BUILT_IN, *installed()]
    for command in commands:
        command.add_to(sub, [after])
    parser.set_defaults(_commands=commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
