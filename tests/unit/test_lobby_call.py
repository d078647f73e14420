"""The pure parts of a call in the 3D hall: the call as messages build it, the commands it
makes, the states the branch's news leads to, the frame hand-over between threads, and the
routes a walking customer takes round the furniture."""

from __future__ import annotations

import base64
import threading

import numpy as np
import pytest

from client.lobby import LinkError
from client.lobby.call import FrameSlot, SyntheticCamera, audio_device
from client.lobby.incall import CallProblem
from client.lobby.layout import load_layout, nearest_target
from client.lobby.live import CALL, LiveHall
from client.lobby.states import TRANSITIONS, route, wanted
from client.lobby.walking import blocked, clear, heading_to, plan, spawn_pose

SHA = "ab" * 32
QUESTION = {"type": "question", "session_id": "s_1", "index": 1, "total": 8, "question": {
    "id": "age", "text": "Your age?", "options": [{"id": "A", "text": "Under 30"},
                                                  {"id": "B", "text": "30 to 50"}]}}


def paired_hall(role: str = "teller") -> LiveHall:
    hall = LiveHall()
    hall.apply({"type": "queued", "session_id": "s_1", "service": "loan_signing",
                "position": 1}, 0.0)
    changed = hall.apply({"type": "paired", "session_id": "s_1", "service": "loan_signing",
                          "role": "customer", "peer": {"name": "Tina Zhao", "role": role}}, 0.0)
    assert CALL in changed
    return hall


# ------------------------------------------------------------------ the call's model
def test_a_call_is_built_from_the_branchs_messages() -> None:
    hall = paired_hall()
    call = hall.call
    assert call.paired and call.agent == "teller" and call.session_id == "s_1"
    assert "Tina Zhao" in call.status()
    hall.apply({"type": "caption", "speaker": "teller", "text": "Welcome"}, 0.0)
    hall.apply({"type": "caption", "speaker": "customer", "text": "Hello"}, 0.0)
    assert call.caption_lines() == "teller 柜员: Welcome\nYou 您: Hello"
    for i in range(5):  # only the last few lines stay on the screen
        hall.apply({"type": "caption", "speaker": "teller", "text": f"line {i}"}, 0.0)
    assert call.caption_lines().splitlines()[-1].endswith("line 4")
    assert len(call.caption_lines().splitlines()) == 3
    hall.apply({"type": "flow", "session_id": "s_1", "flow": {"kind": "signature"}}, 0.0)
    assert call.flow_kind == "signature" and "signature" in call.status()
    hall.apply({"type": "ended", "session_id": "s_1", "outcome": "completed"}, 0.0)
    assert not call.paired and call.ended == "completed" and hall.queued is None


def test_signing_needs_a_pushed_contract_and_a_name() -> None:
    hall = paired_hall()
    with pytest.raises(CallProblem, match="no contract"):
        hall.call.sign("Alice Chen")
    hall.apply({"type": "document", "id": "loan_contract", "title": "Loan", "sha256": SHA}, 0.0)
    with pytest.raises(CallProblem, match="type your name"):
        hall.call.sign("   ")
    message = hall.call.sign(" Alice Chen ")
    assert (message["type"], message["name"], message["document_sha256"]) == (
        "sign", "Alice Chen", SHA)
    png = base64.b64decode(message["image"].removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG")


def test_an_answer_is_a_click_on_an_option_of_the_open_question() -> None:
    hall = paired_hall("digital_human")
    with pytest.raises(CallProblem, match="no question"):
        hall.call.answer("A")
    hall.apply(QUESTION, 0.0)
    assert hall.call.question_lines().splitlines() == [
        "Q1/8  Your age?", "  A. Under 30", "  B. 30 to 50"]
    assert hall.call.answer("B") == {"type": "answer", "question": "age", "option": "B"}
    with pytest.raises(CallProblem, match="no option C"):
        hall.call.answer("C")
    hall.apply({"type": "flow", "flow": {"kind": "suitability"}}, 0.0)
    assert hall.call.question is None  # past the questionnaire: nothing to click


def test_a_reconnect_finds_the_call_again() -> None:
    hall = LiveHall()
    hall.apply({"type": "welcome", "user": {}, "session": {
        "session_id": "s_9", "state": "in_call", "service": "risk_assessment",
        "teller": None}}, 0.0)
    assert hall.call.paired and hall.call.agent == "digital_human"
    assert hall.queued == "risk_assessment"
    assert route("Lobby", wanted("Lobby", hall) or "") == ["Queueing", "InCall"]


def test_a_lost_link_keeps_the_call_while_reconnecting_and_ends_it_if_nothing_waited() -> None:
    hall = paired_hall()
    hall.apply({"type": "link_down", "reason": "the connection was lost",
                "reconnecting": True}, 0.0)
    assert hall.call.paired and not hall.entered and "reconnecting" in hall.problem
    assert wanted("InCall", hall) is None
    hall.apply({"type": "welcome", "user": {"display_name": "Alice Chen"}}, 0.0)  # no session
    assert not hall.call.paired and hall.call.ended == "lost" and hall.queued is None
    assert wanted("InCall", hall) == "Lobby" and hall.name == "Alice Chen"


def test_a_lost_link_that_will_not_come_back_ends_the_call() -> None:
    hall = paired_hall()
    hall.apply({"type": "link_down", "reason": "cannot sign in", "reconnecting": False}, 0.0)
    assert not hall.call.paired and hall.call.ended == "link_down" and not hall.entered
    assert wanted("InCall", hall) == "Lobby"
    hall.apply({"type": "link_up", "attempts": 1}, 0.0)
    assert hall.problem == ""


# ------------------------------------------------------------------ where the news leads
def test_the_states_follow_the_branch() -> None:
    hall = LiveHall()
    assert wanted("Lobby", hall) is None
    hall.apply({"type": "queued", "session_id": "s_1", "service": "loan_signing"}, 0.0)
    assert wanted("Lobby", hall) == "Queueing" and wanted("Queueing", hall) is None
    hall.apply({"type": "paired", "session_id": "s_1", "peer": {"role": "teller"}}, 0.0)
    assert wanted("Queueing", hall) == "InCall"
    assert wanted("Mall", hall) is None  # the shelf stays open during the call
    hall.apply({"type": "flow", "flow": {"kind": "signature", "signature": None}}, 0.0)
    assert wanted("InCall", hall) == "Signing" and wanted("Mall", hall) == "Signing"
    hall.apply({"type": "flow", "flow": {"kind": "signature", "signature": {"name": "A"}}},
               0.0)
    assert wanted("Signing", hall) == "InCall"
    hall.apply({"type": "flow", "flow": {"kind": "questionnaire"}}, 0.0)
    assert wanted("InCall", hall) is None  # no question yet: stay in the call
    hall.apply(QUESTION, 0.0)
    assert wanted("InCall", hall) == "Questionnaire"
    hall.apply({"type": "requeued", "session_id": "s_1"}, 0.0)
    assert wanted("Questionnaire", hall) == "Queueing"
    hall.apply({"type": "left", "session_id": "s_1"}, 0.0)
    assert wanted("Queueing", hall) == "Lobby"


def test_a_refused_join_goes_back_to_the_lobby() -> None:
    hall = LiveHall()
    assert wanted("Queueing", hall) is None  # the join is on its way
    hall.apply({"type": "error", "code": "unknown_service", "message": "unknown service"}, 0.0)
    assert hall.join_refused and wanted("Queueing", hall) == "Lobby"
    assert "unknown service" in hall.problem


def test_routes_go_only_where_the_map_allows() -> None:
    assert route("Lobby", "Signing") == ["Queueing", "InCall", "Signing"]
    assert route("Signing", "Questionnaire") == ["InCall", "Questionnaire"]
    assert route("Mall", "Mall") == []
    path = route("Off", "Signing")
    assert path == ["Lobby", "Queueing", "InCall", "Signing"]
    for a, b in zip(["Off", *path], path, strict=False):
        assert b in TRANSITIONS[a]


# ------------------------------------------------------------------ media hand-over
def test_the_frame_slot_keeps_only_the_newest_frame() -> None:
    slot = FrameSlot()
    assert slot.take() is None
    frames = [np.full((240, 320, 3), i, np.uint8) for i in range(50)]
    writer = threading.Thread(target=lambda: [slot.put(f) for f in frames])
    writer.start()
    writer.join()
    newest = slot.take()
    assert newest is not None and int(newest[0, 0, 0]) == 49
    assert slot.take() is None and slot.received == 50 and slot.size == (320, 240)


async def test_the_synthetic_camera_is_live_and_paced() -> None:
    camera = SyntheticCamera("Alice Chen", size=(160, 120), fps=15)
    first, second = await camera.recv(), await camera.recv()
    assert (first.width, first.height) == (160, 120)
    assert second.pts - first.pts == 90000 // 15
    camera.stop()


def test_audio_devices_are_named_format_colon_device() -> None:
    assert audio_device("alsa:default") == ("default", "alsa")
    assert audio_device("alsa:hw:1,0") == ("hw:1,0", "alsa")
    assert audio_device("none") is None
    with pytest.raises(LinkError, match="FORMAT:DEVICE"):
        audio_device("default")


# ------------------------------------------------------------------ walking somewhere
@pytest.mark.parametrize("target_id", ["counter:loan_signing", "counter:general_enquiry",
                                       "kiosk", "mall_shelf", "risk_booth"])
def test_a_route_round_the_furniture_reaches_the_target(target_id: str) -> None:
    layout = load_layout()
    start = spawn_pose(layout)
    target = layout.target(target_id)
    points = plan(layout, (start.x, start.y), target.approach())
    assert points[-1] == target.approach()
    legs = zip([(start.x, start.y), *points], points, strict=False)
    assert all(clear(layout, a, b) for a, b in legs)  # no leg passes through anything
    end = points[-1]
    near = nearest_target(layout, *end)
    assert near is not None and near.id == target_id


def test_a_route_into_furniture_is_refused() -> None:
    layout = load_layout()
    bench = layout.target("seating:front_east")
    assert blocked(layout, bench.x, bench.y)
    with pytest.raises(ValueError, match="inside"):
        plan(layout, (0.0, -8.0), (bench.x, bench.y))


def test_headings_point_where_the_walker_goes() -> None:
    assert heading_to(0, 0, 0, 5) == pytest.approx(0.0)
    assert heading_to(0, 0, -5, 0) == pytest.approx(90.0)  # 90 faces -x, as in walking.step
    assert heading_to(0, 0, 0, -5) == pytest.approx(180.0)


def test_the_identity_step_asks_for_the_id_number_until_it_is_shown() -> None:
    hall = paired_hall()
    assert not hall.call.identity_pending
    hall.apply({"type": "flow", "flow": {"kind": "identity", "identity": {}}}, 0.0)
    assert hall.call.identity_pending
    assert hall.call.id_number(" 1101 0519 4912 3100 2x ") == "11010519491231002X"
    with pytest.raises(CallProblem, match="ID number"):
        hall.call.id_number("  ")
    hall.apply({"type": "flow", "flow": {"kind": "identity", "identity": {
        "at": 1.0, "id_valid": True}}}, 0.0)
    assert not hall.call.identity_pending  # shown: waiting for the teller now
    hall.apply({"type": "ended", "outcome": "completed"}, 0.0)
    with pytest.raises(CallProblem, match="not in a call"):
        hall.call.id_number("11010519491231002X")
