"""``python -m vbank`` runs the command line."""

from __future__ import annotations

from vbank.cli import main

raise SystemExit(main())
