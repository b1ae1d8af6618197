"""python -m ebyd_utils.scan: the same as `ebyd-scan` (scan/cli.py)."""

import sys

from .cli import main

sys.exit(main())
