"""python -m isslide: the command line (isslide.cli)."""

import sys

from .cli import main

sys.exit(main())
