"""The `pixdex` console script. It imports the command line inside main(), so that Ctrl-C while
Python is still loading it (half a second of imports) or reading the arguments ends with exit
130 and one line, never a traceback through whatever module was loading."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from indexer.cli.main import main as run

        return run()  # a command interrupted says what it kept (indexer.cli.main.execute)
    except KeyboardInterrupt:  # while loading, or reading the arguments
        print("pixdex: interrupted", file=sys.stderr)
        return 130  # indexer.cli.common.INTERRUPTED, which is not loaded yet
