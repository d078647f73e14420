"""The media side's events: declared once, sent as JSON, read back typed; a line that is not
one of them is refused with a clear reason."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest

from vbank.media.events import (
    EVENTS,
    AgentEnd,
    BadMediaEvent,
    BargeIn,
    Caption,
    FromMedia,
    HandingOver,
    Interrupted,
    LegClosed,
    LegState,
    MediaEvent,
    Said,
    ServiceRequested,
    Status,
    Utterance,
    WorkerLost,
    parse,
    to_wire,
)
from vbank.rtc.worker import MediaClient

SAMPLES: list[MediaEvent] = [
    LegState("customer", "connected"),
    LegClosed("teller", "closed", {"path": "s/teller-1.mkv", "sha256": "ab" * 32}),
    LegClosed("customer", "failed"),
    Utterance("customer", "I confirm", 1765000000.5, "i confirm", ["guaranteed"], 1.2),
    Utterance("teller", "", 1765000001.0),
    Said("Please read the terms.", "disclosure:terms", 1765000002.0),
    Caption("digital_human", "您好", 1765000003.0),
    Caption("customer", "hello"),
    Interrupted(["the second line"]),
    BargeIn(0.64),
    ServiceRequested("risk_assessment"),
    HandingOver("asked"),
    AgentEnd("flow_complete"),
    Status(3, 12.5),
    WorkerLost(),
]


def test_every_event_of_the_catalogue_has_a_sample() -> None:
    assert {type(e) for e in SAMPLES} == set(typing.get_args(MediaEvent))
    assert set(EVENTS) == {cls.KIND for cls in typing.get_args(MediaEvent)}


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_each_event_comes_back_as_it_was_sent(event: MediaEvent) -> None:
    line = json.dumps(to_wire(event, "s_1"))  # as a worker writes it
    assert parse(json.loads(line), "worker-1") == FromMedia(event, "s_1", "worker-1")


@pytest.mark.parametrize(("message", "why"), [
    ({"event": "teleport"}, "unknown media event 'teleport'"),
    ({"role": "customer"}, "unknown media event None"),
    ({"event": "speech", "role": "customer", "text": 7, "at": 1.0}, "text is not"),
    ({"event": "speech", "role": "customer", "at": 1.0}, "missing"),
    ({"event": "speech", "role": "customer", "text": "x", "at": "noon"}, "at is not"),
    ({"event": "speech", "role": "customer", "text": "x", "at": 1.0, "spotted": [1]},
     "spotted is not"),
    ({"event": "status", "sessions": True, "lag_p95_ms": 1.0}, "sessions is not"),
    ({"event": "leg_state", "role": "customer", "state": "new", "session_id": 5},
     "session_id must be a string"),
])
def test_what_is_not_an_event_is_refused(message: dict[str, Any], why: str) -> None:
    with pytest.raises(BadMediaEvent, match=why):
        parse(message)


def test_a_bad_line_from_a_worker_is_dropped_and_the_next_still_arrives() -> None:
    client = MediaClient()
    client.name = "worker-1"
    got: list[FromMedia] = []
    client.received({"event": "speech", "text": None}, got.append)
    client.received(to_wire(Status(2, 40.0)), got.append)
    client.received(to_wire(Caption("customer", "hi"), "s_1"), got.append)
    assert [type(g.event) for g in got] == [Status, Caption]
    assert client.lag_p95_ms == 40.0  # its load is noted on the way
