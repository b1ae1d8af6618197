"""python -m ebyd_utils.zoo: the zoo's command (zoo/cli.py)."""

from .cli import main

raise SystemExit(main())
