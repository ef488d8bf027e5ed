"""``python -m brainalign``: the command line (see :mod:`brainalign.cli`)."""

import sys

from brainalign.cli import main

if __name__ == "__main__":
    sys.exit(main())
