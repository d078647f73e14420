"""What the media side tells the server, declared once.

The WebRTC legs, the ears that caption and check a participant, and the digital human
(``vbank.rtc``, ``vbank.speech``) build these events; a media worker sends them to the server
as JSON lines (``to_wire``: ``{"event": KIND, "session_id": ..., fields}``), and the server's
media pool reads them back (``parse``), so the hub receives typed events, never dicts. A line
that is not one of them is refused (``BadMediaEvent``) and loses nothing else.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vbank import VbankError


class BadMediaEvent(VbankError):
    """A message from a media worker that is not an event of this catalogue."""


@dataclass(frozen=True, slots=True)
class LegState:
    """A participant's connection changed state (``connected``, ``failed``, ...)."""

    KIND: ClassVar[str] = "leg_state"
    role: str
    state: str


@dataclass(frozen=True, slots=True)
class LegClosed:
    """A participant's leg closed; its recording (``RecordingInfo.as_dict``), if any."""

    KIND: ClassVar[str] = "leg_closed"
    role: str
    reason: str
    recording: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Utterance:
    """A participant said something: the words, the expected phrase it matched, the phrases
    spotted in it (the quality check's), its length and when it ended (epoch seconds)."""

    KIND: ClassVar[str] = "speech"
    role: str
    text: str
    at: float
    phrase: str | None = None
    spotted: list[str] = field(default_factory=list)
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class Said:
    """The digital human finished saying a flow's line (``key``) or an answer."""

    KIND: ClassVar[str] = "said"
    text: str
    key: str
    at: float


@dataclass(frozen=True, slots=True)
class Caption:
    """Words to show as a caption: the customer's as understood, or the digital human's
    as it starts saying them."""

    KIND: ClassVar[str] = "caption"
    speaker: str
    text: str
    at: float | None = None


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The customer spoke over the digital human: what it had not yet said."""

    KIND: ClassVar[str] = "interrupted"
    unsaid: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BargeIn:
    """The customer spoke over the digital human; ``dropped_s`` of its voice was cut."""

    KIND: ClassVar[str] = "barge_in"
    dropped_s: float


@dataclass(frozen=True, slots=True)
class ServiceRequested:
    """The customer asked the digital human for a service."""

    KIND: ClassVar[str] = "start_service"
    service: str


@dataclass(frozen=True, slots=True)
class HandingOver:
    """The digital human passes the customer to a person."""

    KIND: ClassVar[str] = "hand_over"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AgentEnd:
    """The digital human ended the call (the customer said goodbye, the flow is done)."""

    KIND: ClassVar[str] = "agent_end"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Status:
    """A media node's load, every ``STATUS_INTERVAL_S``."""

    KIND: ClassVar[str] = "status"
    sessions: int
    lag_p95_ms: float


@dataclass(frozen=True, slots=True)
class WorkerLost:
    """A media worker's channel closed without the server asking (made by the server)."""

    KIND: ClassVar[str] = "worker_lost"


MediaEvent = (LegState | LegClosed | Utterance | Said | Caption | Interrupted | BargeIn
              | ServiceRequested | HandingOver | AgentEnd | Status | WorkerLost)

#: where a participant the media node runs (an ear, the digital human) sends its events
EventSink = Callable[[MediaEvent], None]

EVENTS: dict[str, type[MediaEvent]] = {cls.KIND: cls for cls in typing.get_args(MediaEvent)}


@dataclass(frozen=True, slots=True)
class FromMedia:
    """An event as the server receives it: from which worker, about which session."""

    event: MediaEvent
    session_id: str | None = None
    worker: str = ""


def to_wire(event: MediaEvent, session_id: str | None = None) -> dict[str, Any]:
    """The JSON object a worker sends for ``event``."""
    return {"event": event.KIND, **({"session_id": session_id} if session_id else {}),
            **dataclasses.asdict(event)}


def parse(message: dict[str, Any], worker: str = "") -> FromMedia:
    """An event from its JSON object, its fields checked against the catalogue."""
    kind = message.get("event")
    cls = EVENTS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise BadMediaEvent(f"unknown media event {kind!r}")
    session_id = message.get("session_id")
    if session_id is not None and not isinstance(session_id, str):
        raise BadMediaEvent(f"{kind}: session_id must be a string")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in message:
            continue  # the dataclass says whether it has a default
        value = message[f.name]
        if not _fits(value, hints[f.name]):
            raise BadMediaEvent(f"{kind}: {f.name} is not {hints[f.name]}")
        values[f.name] = value
    try:
        event = cls(**values)
    except TypeError as exc:
        raise BadMediaEvent(f"{kind}: {exc}") from exc
    return FromMedia(event, session_id, worker)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type (str, int, float, list, dict, or None)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = typing.get_args(hint) if union else (hint,)
    for option in options:
        base = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return True
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if base in (str, list, dict) and isinstance(value, base):
            return base is not list or all(isinstance(v, str) for v in value)
    return False
