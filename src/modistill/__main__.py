"""``python -m modistill``: the same command line as the ``modistill`` script."""

import sys

from modistill.cli import main

sys.exit(main())
