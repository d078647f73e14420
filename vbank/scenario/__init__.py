"""Scenarios: declarative journeys in scenes/scenarios/*.yaml (shared/spec/scenarios.md)."""

from __future__ import annotations

from vbank import VbankError


class ScenarioError(VbankError):
    """An invalid scenario file: names the file, the line and what is wrong."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.reason = file, line, message
