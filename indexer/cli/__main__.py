"""`python -m indexer.cli ...` == `pixdex ...`."""

import sys

from indexer.cli.main import main

sys.exit(main())
