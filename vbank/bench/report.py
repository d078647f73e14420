"""How every benchmark reports: a table for people, JSON for tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def report(name: str, figures: dict[str, Any], json_out: Path | None) -> None:
    """Print the figures as a table and as JSON; write the JSON to ``json_out`` if given."""
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = json.dumps(value) if isinstance(value, (dict, list)) else value
        print(f"{key:<{width}}  {shown}")
    text = json.dumps({"bench": name, **figures}, indent=2)
    print(text)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(text + "\n")
