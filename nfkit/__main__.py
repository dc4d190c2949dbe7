"""Run the command-line interface with ``python -m nfkit``."""

from nfkit.cli import main

raise SystemExit(main())
