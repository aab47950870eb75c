"""`python -m backfill SOURCE ...`: the container's command, the same as `pixdex backfill`."""

import sys

from backfill.cli import COMMAND
from indexer.cli.main import main_of

sys.exit(main_of(COMMAND, "python -m backfill", sys.argv[1:]))
