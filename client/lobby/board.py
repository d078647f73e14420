"""The queue board's words: each service's name, how many wait, and the wait in minutes.

Pure: ``rows`` reads the server's ``queue_board`` list (in the ``lobby`` welcome and in
``queue_board`` updates) and ``columns`` lays the rows out as the board's three columns of
text; ``World.set_queue_board`` only puts that text on the screen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vbank.domain.flows import Text
from vbank.domain.services import SERVICES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One line of the queue board."""

    service: str
    waiting: int
    wait_s: float  # what joining now would wait, as the server estimates it
    name: Text | None = None  # as the server names the service; None: the client's own name


def rows(services: Iterable[Any]) -> list[QueueRow]:
    """The board's rows from the server's ``[{id, name: {en, zh}, length,
    estimated_wait_s}]``, in the server's order; entries that are not rows are skipped."""
    out = []
    for raw in services:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
            log.warning("ignoring a queue board entry: %r", raw)
            continue
        length, wait = raw.get("length"), raw.get("estimated_wait_s")
        if not isinstance(length, int) or isinstance(length, bool) \
                or not isinstance(wait, int | float) or isinstance(wait, bool):
            log.warning("ignoring a queue board entry without length and wait: %r", raw)
            continue
        name = raw.get("name")
        text = Text(str(name["en"]), str(name["zh"])) if isinstance(name, Mapping) \
            and "en" in name and "zh" in name else None
        out.append(QueueRow(raw["id"], max(length, 0), max(float(wait), 0.0), text))
    return out


def service_name(row: QueueRow) -> str:
    """"Loan signing 贷款面签": the server's name, else the client's, else the id."""
    if row.name is not None:
        return f"{row.name.en} {row.name.zh}"
    service = SERVICES.get(row.service)
    return f"{service.name_en} {service.name_zh}" if service is not None else row.service


def wait_text(seconds: float) -> str:
    """The wait in whole minutes, as the board shows it: ``~12 min``."""
    return f"~{round(seconds / 60)} min"


def columns(board: Sequence[QueueRow]) -> tuple[str, str, str]:
    """The board's three columns: names, how many wait, the wait; one line per row."""
    return ("\n".join(service_name(r) for r in board),
            "\n".join(f"{r.waiting} waiting 人" for r in board),
            "\n".join(wait_text(r.wait_s) for r in board))
