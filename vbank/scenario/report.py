"""What a scenario run reports: per-step results, and the lines a person reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class StepResult:
    index: int
    line: int
    actor: str
    action: str
    argument: Any
    ok: bool
    elapsed_ms: float
    error: str | None = None
    seen: str | None = None


@dataclass
class ScenarioResult:
    id: str
    file: str
    passed: bool = False
    duration_s: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    asserts: list[dict[str, Any]] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"scenario": self.id, "file": self.file, "passed": self.passed,
                "duration_s": round(self.duration_s, 2), "error": self.error,
                "steps": [vars(s) for s in self.steps], "asserts": self.asserts,
                "turns": self.turns}


class Report:
    """Plain lines, and in a terminal a status line showing what is running now."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()
        self._status = False

    def line(self, text: str) -> None:
        self._clear()
        print(text, file=self.out, flush=True)

    def status(self, text: str) -> None:
        if self.live:
            self._clear()
            self.out.write(f"\x1b[2m… {text[:100]}\x1b[0m")
            self.out.flush()
            self._status = True

    def _clear(self) -> None:
        if self._status:
            self.out.write("\r\x1b[2K")
            self._status = False
