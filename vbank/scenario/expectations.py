"""``expect:``: waiting until what an actor sees, hears and receives matches the file."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vbank.scenario.actors import Actor, StepFailed
from vbank.scenario.hearing import hears_in_process

#: how long an ``expect`` waits when the file does not say
DEFAULT_WITHIN_S = 10.0
#: how often ``points_balance`` asks the server for the balance while it waits
BALANCE_POLL_S = 0.3
#: expectations met by a message: its type, and the field that must equal the value
MESSAGE_EXPECTATIONS = {"flow_step": ("flow", "step"), "risk_level": ("risk_assessed", "level"),
                        "qc_alert": ("qc_alert", "kind")}


Balance = Callable[[Actor], Awaitable[int]]


class Expectations:
    """Checks ``expect:`` steps for one scenario; ``shared["ear"]`` decodes speech and
    ``balance`` reads a customer's points from the server."""

    def __init__(self, scenario_id: str, language: str, shared: dict[str, Any],
                 balance: Balance) -> None:
        self.scenario_id = scenario_id
        self.language = language
        self.shared = shared
        self.balance = balance

    async def expect(self, actor: Actor, spec: dict[str, Any]) -> None:
        within = float(spec.get("within_s", DEFAULT_WITHIN_S))
        deadline = time.monotonic() + within
        checks: list[tuple[str, Callable[[], str | None]]] = [
            (name, self._check(actor, name, value)) for name, value in spec.items()
            if name not in ("within_s", "actor", "heard", "points_balance")]
        heard = spec.get("heard")
        last_listen = 0.0
        balance = spec.get("points_balance")
        last_read = 0.0
        balance_why: str | None = "not read yet"
        while True:
            final = time.monotonic() >= deadline
            failures = [f"{name}: {why}" for name, check in checks if (why := check())]
            if balance is not None:  # asked of the server, so not on every tick
                if final or time.monotonic() - last_read >= BALANCE_POLL_S:
                    last_read = time.monotonic()
                    balance_why = number_problem(await self.balance(actor), balance, "points")
                if balance_why:
                    failures.append(f"points_balance: {balance_why}")
            if not failures and heard is not None:
                if final or time.monotonic() - last_listen >= 0.5:
                    last_listen = time.monotonic()
                    why = await self._heard(actor, str(heard), final)
                    if why:
                        failures.append(f"heard: {why}")
                else:
                    failures.append("heard: listening")
            if not failures:
                self._consume(actor, spec)
                return
            if final:
                raise StepFailed(f"within {within:g} s: " + "; ".join(failures))
            await asyncio.sleep(0.1)

    def _check(self, actor: Actor, name: str, value: Any) -> Callable[[], str | None]:
        """A function saying why ``name: value`` does not hold yet (None once it does)."""
        if name == "paired_with":
            return lambda: None if actor.paired_role == value else (
                f"wanted {value}, paired with {actor.paired_role}")
        if name == "queue_position":
            return lambda: None if actor.position == value else (
                f"wanted {value}, position is {actor.position}")
        if name == "video_frames":
            return lambda: number_problem(actor.video_frames, value, "video frames")
        if name == "answered":  # the flow holds these answers (by voice or by click)
            return lambda: self._answers_problem(actor, dict(value))
        if name in ("caption", "event", *MESSAGE_EXPECTATIONS):
            return lambda: None if self._find(actor, name, value) is not None else (
                f"no {name} matching {value!r} yet")
        raise StepFailed(f"unknown expectation {name}")

    @staticmethod
    def _answers_problem(actor: Actor, wanted: dict[str, str]) -> str | None:
        flows = [m["flow"] for m in actor.log
                 if m.get("type") == "flow" and isinstance(m.get("flow"), dict)]
        answers = dict(flows[-1].get("answers") or {}) if flows else {}
        wrong = {q: answers.get(q) for q, option in wanted.items() if answers.get(q) != option}
        return None if not wrong else f"wanted {wanted}, the flow has {wrong}"

    def _find(self, actor: Actor, name: str, value: str) -> int | None:
        """Index in the actor's log of the first unread message satisfying ``name``."""
        start = actor.cursors.get(f"{name}:{value}" if name != "caption" else name, 0)
        for i in range(start, len(actor.log)):
            m = actor.log[i]
            if name == "event" and m.get("type") == value:
                return i
            if name in MESSAGE_EXPECTATIONS:
                kind, field = MESSAGE_EXPECTATIONS[name]
                body = m.get("flow") if kind == "flow" else m
                if m.get("type") == kind and isinstance(body, dict) and body.get(field) == value:
                    return i
            if name == "caption" and m.get("type") in ("caption", "transcript") and \
                    re.search(value, str(m.get("text", ""))):
                return i
        return None

    def _consume(self, actor: Actor, spec: dict[str, Any]) -> None:
        """A message that satisfied an expectation is not used again by the next one."""
        for name in ("caption", "event", *MESSAGE_EXPECTATIONS):
            if name in spec:
                i = self._find(actor, name, spec[name])
                if i is not None:
                    key = f"{name}:{spec[name]}" if name != "caption" else name
                    actor.cursors[key] = i + 1

    async def _heard(self, actor: Actor, pattern: str, final: bool) -> str | None:
        audio = actor.received_audio
        if not audio:
            return "no audio received"
        vosk = os.environ.get("VBANK_VOSK_MODEL")
        loop = asyncio.get_running_loop()
        try:
            end, texts = await loop.run_in_executor(
                self.shared["ear"], hears_in_process, self.language, vosk, audio, pattern,
                time.monotonic(), final)
        except RuntimeError as exc:  # no recogniser for the language
            raise StepFailed(str(exc)) from exc
        if end is not None:
            actor.heard_from = end + 0.01
            return None
        why = f"recognised {texts[-3:]}" if texts else "only silence so far"
        if final:  # keep what was heard, so the author can listen to it
            wav = Path(tempfile.gettempdir()) / f"vbank-heard-{self.scenario_id}-{actor.key}-" \
                f"{secrets.token_hex(3)}.wav"
            await asyncio.to_thread(write_wav, wav, audio)
            why += f"; the audio is in {wav}"
        return why


def write_wav(path: Path, audio: list[tuple[float, Any]]) -> None:
    """Received frames as a 48 kHz mono WAV file."""
    import wave

    import numpy as np

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(np.concatenate([pcm for _, pcm in audio]).astype(np.int16).tobytes())


def number_problem(actual: float, want: Any, what: str) -> str | None:
    """Why ``actual`` does not satisfy ``want`` (a number, or ``{min: N}`` / ``{max: N}``)."""
    if isinstance(want, dict):
        low, high = want.get("min"), want.get("max")
        if low is not None and actual < low:
            return f"{actual:g} {what}, wanted at least {low}"
        if high is not None and actual > high:
            return f"{actual:g} {what}, wanted at most {high}"
        return None
    return None if actual == want else f"{actual:g} {what}, wanted {want}"
