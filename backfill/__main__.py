"""`python -m backfill SOURCE ...`: the container's command, the same as `pixdex backfill`."""

import sys

from indexer.cli.main import main

sys.exit(main(["backfill", *sys.argv[1:]]))
