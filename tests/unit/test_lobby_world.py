"""The 3D hall offscreen: layout, placement, reach, walking, picking, states, screenshots."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from direct.fsm.FSM import RequestDenied
from panda3d.core import Point2, Point3

from client.lobby import LayoutError, LobbyError
from client.lobby.app import LobbyApp
from client.lobby.avatar import name_tag
from client.lobby.board import QueueRow
from client.lobby.layout import FIXED_IDS, load_layout, nearest_target, parse_layout
from client.lobby.net import NetLink
from client.lobby.states import LobbyStates
from client.lobby.walking import Pose, blocked, spawn_pose, step
from client.lobby.world import World, pow2

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden") / "lobby_entrance_640x360.png"
#: mean absolute difference (0..255) a render may have from the golden image; the software
#: renderer is deterministic, so this only absorbs font-rasteriser or libpng differences
GOLDEN_TOLERANCE = 2.0


@pytest.fixture(scope="module")
def app() -> Iterator[LobbyApp]:
    """One offscreen ShowBase for the module (Panda allows one per process at a time)."""
    lobby = LobbyApp(load_layout(), offscreen=True, size=(640, 360))
    yield lobby
    lobby.destroy()


class FakeScreen:
    def __init__(self) -> None:
        self.status = ""
        self.mall_open = False

    def show_status(self, text: str) -> None:
        self.status = text

    def clear_status(self) -> None:
        self.status = ""

    def open_mall(self) -> None:
        self.mall_open = True

    def close_mall(self) -> None:
        self.mall_open = False


def hall_doc() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "scenes" / "lobby.yaml").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ the hall file
def test_every_fixed_target_id_is_in_the_hall_file() -> None:
    layout = load_layout()
    assert set(FIXED_IDS) <= set(layout.targets)
    assert {"counter:loan_signing", "counter:risk_assessment", "counter:account_opening",
            "counter:general_enquiry"} <= set(layout.targets)
    assert layout.of_kind("seating")
    assert layout.target("counter:loan_signing").label.zh == "贷款面签"


def test_hall_file_errors_name_the_file_and_the_entry() -> None:
    doc = hall_doc()
    doc["targets"][0]["position"] = [40, 0]
    with pytest.raises(LayoutError, match=r"^lobby\.yaml: targets\[0\] \(entrance\): position "
                       r"\(40, 0\) is outside the hall"):
        parse_layout(doc, "lobby.yaml")
    doc = hall_doc()
    doc["targets"] = [t for t in doc["targets"] if t["id"] != "kiosk"]
    with pytest.raises(LayoutError, match=r"^lobby\.yaml: targets: missing kiosk$"):
        parse_layout(doc, "lobby.yaml")
    doc = hall_doc()
    doc["targets"][1]["id"] = "counter:mortgages"
    with pytest.raises(LayoutError, match=r"targets\[1\] \(counter:mortgages\): no service "
                       r"mortgages"):
        parse_layout(doc, "lobby.yaml")
    doc = hall_doc()
    doc["targets"][2]["label"] = {"en": "Only English"}
    with pytest.raises(LayoutError, match=r"targets\[2\] \(counter:risk_assessment\): label "
                       r"must be \{en: \.\.\., zh: \.\.\.\}"):
        parse_layout(doc, "lobby.yaml")
    doc = hall_doc()
    doc["targets"].append(dict(doc["targets"][0]))
    with pytest.raises(LayoutError, match=r"id entrance is used twice"):
        parse_layout(doc, "lobby.yaml")


def test_a_missing_hall_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match=r"nope\.yaml: cannot be read"):
        load_layout(tmp_path / "nope.yaml")


# ------------------------------------------------------------------ the world
def test_targets_stand_where_the_hall_file_says() -> None:
    layout = load_layout()
    world = World(layout)  # no ShowBase needed to build the hall
    assert set(world.targets) == set(layout.targets)
    for target_id, target in layout.targets.items():
        node = world.targets[target_id]
        assert tuple(node.getPos()) == pytest.approx((target.x, target.y, target.z), abs=1e-4)
        # builders face -y; the node is turned so that its front faces the heading
        front = world.root.getRelativeVector(node, (0, -1, 0))
        assert (front.x, front.y) == pytest.approx(target.facing(), abs=1e-4)
    world.root.removeNode()


def test_counters_face_the_entrance_and_carry_their_sign() -> None:
    world = World(load_layout())
    for name in ("loan_signing", "risk_assessment", "account_opening", "general_enquiry"):
        counter = world.layout.target(f"counter:{name}")
        assert counter.facing() == pytest.approx((0, -1), abs=1e-9)
        assert counter.approach()[1] < counter.y
    world.root.removeNode()


def test_queue_board_shows_each_service_live() -> None:
    world = World(load_layout())
    world.set_queue_board([QueueRow("loan_signing", 3, 720.0), QueueRow("general_enquiry", 0,
                                                                          60.0)])
    text = world.queue_board_text()
    assert "Loan signing 贷款面签" in text and "3 waiting" in text and "~12 min" in text
    assert "General enquiry 综合咨询" in text and "Risk assessment" not in text
    world.root.removeNode()


def test_screen_frames_are_padded_to_powers_of_two() -> None:
    assert [pow2(n) for n in (1, 2, 3, 256, 480, 640)] == [1, 2, 4, 256, 512, 1024]
    world = World(load_layout())
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:40, :40] = (0, 0, 255)  # a red block, top-left (BGR)
    world.show_frame(frame)
    tex = world.screen_texture
    assert (tex.getXSize(), tex.getYSize()) == (1024, 512)
    ram = np.frombuffer(memoryview(tex.getRamImage()), np.uint8).reshape(512, 1024, 3)
    # Panda's rows start at the bottom: the top-left block sits at rows 440..479
    assert ram[479, 0].tolist() == [0, 0, 255] and ram[0, 0].tolist() == [0, 0, 0]
    world.root.removeNode()


# ------------------------------------------------------------------ reach and walking
def test_nearest_target_is_the_counter_in_front_of_the_customer() -> None:
    layout = load_layout()
    loan = layout.target("counter:loan_signing")
    x, y = loan.approach()
    assert nearest_target(layout, x, y) == loan
    assert nearest_target(layout, *layout.target("mall_shelf").approach()).id == "mall_shelf"
    assert nearest_target(layout, *layout.target("risk_booth").approach()).id == "risk_booth"


def test_nothing_is_in_reach_in_the_middle_of_the_aisle_or_at_a_bench() -> None:
    layout = load_layout()
    assert nearest_target(layout, 0.0, -6.0) is None
    bench = layout.target("seating:front_west")
    assert nearest_target(layout, bench.x, bench.y - 1.0) is None  # benches are passive


def test_walking_forward_from_the_entrance_stops_at_the_teller_line() -> None:
    layout = load_layout()
    pose = spawn_pose(layout)
    assert not blocked(layout, pose.x, pose.y)
    for _ in range(600):  # ten seconds straight ahead, up the central aisle
        pose = step(layout, pose, 1.0, 0.0, 1 / 60)
    assert pose.x == pytest.approx(0.0)
    assert layout.teller_line() - 0.5 < pose.y <= layout.teller_line()
    assert nearest_target(layout, pose.x, pose.y) is not None


def test_walls_and_furniture_block_walking() -> None:
    layout = load_layout()
    pose = Pose(0.0, -8.0, 90.0)  # facing -x, towards the west wall
    for _ in range(600):
        pose = step(layout, pose, 1.0, 0.0, 1 / 60)
    assert pose.x == pytest.approx(-layout.hall.width / 2 + 0.35, abs=0.1)
    bench = layout.target("seating:front_east")
    assert blocked(layout, bench.x, bench.y)
    turned = step(layout, Pose(0, 0, 0), 0.0, 1.0, 0.5)
    assert turned.heading == pytest.approx(60.0) and (turned.x, turned.y) == (0, 0)


# ------------------------------------------------------------------ the state machine
def test_states_follow_lobby_queue_call_signing_lobby() -> None:
    screen = FakeScreen()
    states = LobbyStates(screen)
    states.request("Lobby")
    states.request("Queueing", "loan_signing")
    assert states.service == "loan_signing" and "贷款面签" in screen.status
    states.request("InCall", "teller")
    assert screen.status == "In a call with the teller"
    states.request("Signing")
    states.request("Lobby")
    assert states.state == "Lobby" and states.service is None
    for path in (["Mall", "Lobby"], ["Queueing", "InCall", "Questionnaire", "Lobby"],
                 ["Queueing", "InCall", "Mall", "Lobby"]):
        for state in path:
            states.request(state, "general_enquiry") if state == "Queueing" else \
                states.request(state)
        assert states.state == "Lobby"


def test_states_refuse_jumps_the_map_does_not_allow() -> None:
    screen = FakeScreen()
    states = LobbyStates(screen)
    states.request("Lobby")
    with pytest.raises(RequestDenied):
        states.request("InCall")  # a call only comes from the queue
    with pytest.raises(RequestDenied):
        states.request("Signing")
    with pytest.raises(RequestDenied):
        states.request("Questionnaire")  # the questionnaire is part of a call
    states.request("Queueing", "account_opening")
    with pytest.raises(RequestDenied):
        states.request("Mall")
    states.request("Lobby")  # leaving the queue undoes what queueing showed
    assert states.state == "Lobby" and "Walk" in screen.status


# ------------------------------------------------------------------ the app, offscreen
def test_interact_at_a_counter_joins_its_queue(app: LobbyApp) -> None:
    counter = app.world.layout.target("counter:risk_assessment")
    app.place(Pose(*counter.approach(), 180.0))
    assert app.interact() == counter
    assert app.states.state == "Queueing" and app.states.service == "risk_assessment"
    assert "理财风险评估" in app.status.getText()
    app.states.request("Lobby")
    app.place(spawn_pose(app.world.layout))
    assert app.interact() is None and app.states.state == "Lobby"


def test_a_customer_sent_somewhere_walks_there_round_the_furniture(app: LobbyApp) -> None:
    assert app.states.state == "Lobby"
    app.place(spawn_pose(app.world.layout))
    app.go_to("counter:loan_signing")
    assert app.route, "a route was planned"
    seen = []
    deadline = time.monotonic() + 15
    while app.route and time.monotonic() < deadline:
        app.taskMgr.step()
        seen.append(app.pose)
        time.sleep(0.01)
    near = nearest_target(app.world.layout, app.pose.x, app.pose.y)
    assert not app.route and near is not None and near.id == "counter:loan_signing"
    assert not any(blocked(app.world.layout, p.x, p.y) for p in seen)
    assert len(seen) > 10  # walked, frame by frame, not jumped
    with pytest.raises(LobbyError, match="no target"):
        app.go_to("counter:nowhere")
    assert app.interact() is not None and app.states.state == "Queueing"
    app.states.request("Lobby")


def test_clicking_on_a_counter_picks_it(app: LobbyApp) -> None:
    app.place(spawn_pose(app.world.layout))
    app.graphicsEngine.renderFrame()
    for target_id in ("counter:loan_signing", "counter:general_enquiry", "kiosk"):
        target = app.world.layout.target(target_id)
        point = app.cam.getRelativePoint(app.render, Point3(target.x, target.y, 0.7))
        screen = Point2()
        assert app.camLens.project(point, screen)
        assert app.world.pick(app.cam, screen.x, screen.y) == target_id
    assert app.world.pick(app.cam, 0.0, -0.98) is None  # the floor at the player's feet


def test_messages_from_the_branch_draw_the_crowd_the_board_and_the_prices(app: LobbyApp
                                                                          ) -> None:
    board = [{"id": "loan_signing", "name": {"en": "Loan signing", "zh": "贷款面签"},
              "length": 2, "estimated_wait_s": 725}]
    app.on_message({"type": "lobby", "you": "me", "period_s": 0.2, "queue_board": board,
                    "avatars": [{"id": "a1", "tag": "Bob L.", "x": 2.0, "y": -3.0,
                                 "heading": 90.0}]})
    [node] = app.crowd.avatars.values()
    assert name_tag(node) == "Bob L." and tuple(node.getPos()) == pytest.approx((2, -3, 0))
    assert node.find("body").getH() == pytest.approx(90.0)
    assert "Loan signing 贷款面签" in app.world.queue_board_text()
    assert "2 waiting" in app.world.queue_board_text()

    app.on_message({"type": "presence", "avatars": [{"id": "a1", "tag": "Bob L.", "x": 4.0,
                                                     "y": -3.0, "heading": 90.0}]})
    app.crowd.sync(app.live.presence, time.monotonic() + 1.0)  # a period later: arrived
    assert tuple(node.getPos()) == pytest.approx((4, -3, 0))
    app.on_message({"type": "avatar_left", "id": "a1"})
    assert app.crowd.avatars == {} and node.isEmpty()

    assert app.world.shelf_prices_text() == ""  # no price list before the mall answers
    app.on_message({"type": "mall_items", "items": [
        {"id": "coffee_voucher", "name": {"en": "Coffee voucher", "zh": "咖啡券"},
         "points": 80, "price": 80, "stock": 499, "tier": "standard"}]})
    app.on_message({"type": "points", "account": {"balance": 430, "tier": "standard"}})
    assert app.world.shelf_prices_text() == "Coffee voucher 咖啡券  80 pts · 499 left 剩"
    assert app.hud.getText() == "430 points 积分 · Standard 普通"


def test_at_the_shelf_up_and_down_choose_and_e_redeems(app: LobbyApp) -> None:
    shelf = app.world.layout.target("mall_shelf")
    app.place(Pose(*shelf.approach(), shelf.heading + 180))
    assert app.interact() == shelf and app.states.state == "Mall"
    assert app.mall_screen.shown
    items = [{"id": i, "name": {"en": i.title(), "zh": "物"}, "points": 10, "stock": 1}
             for i in ("cup", "pen", "hat")]
    app.on_message({"type": "mall_items", "items": items})
    app.press("back", True)
    app.press("back", False)
    assert app.live.shelf.chosen().id == "pen" and not any(app.keys.values())
    assert "> Pen 物" in app.mall_screen.text.getText()
    app.interact()  # no branch in this test: the shelf says so and keeps the key for a retry
    assert app.live.shelf.pending is not None and app.live.shelf.pending.item_id == "pen"
    assert "not connected to the branch" in app.mall_screen.text.getText()
    app.back()
    assert app.states.state == "Lobby" and not app.mall_screen.shown
    app.place(spawn_pose(app.world.layout))


def test_net_link_messages_reach_the_main_thread() -> None:
    link = NetLink().start()
    try:
        async def report() -> None:
            link.post("queue", waiting=3)

        link.submit(report()).result(timeout=5)
        seen: list[tuple[str, dict]] = []
        assert link.drain(lambda event, message: seen.append((event, message))) == 1
        assert seen == [("net-queue", {"type": "queue", "waiting": 3})]
        assert asyncio.iscoroutinefunction(report)
    finally:
        link.stop()


# ------------------------------------------------------------------ the command, and its pixels
def render(path: Path, size: str = "640x360") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([sys.executable, "-m", "vbank", "lobby", "--offscreen", "--screenshot",
                           str(path), "--size", size], capture_output=True, text=True,
                          env=env, timeout=120, cwd=ROOT)


def test_lobby_offscreen_writes_a_screenshot_of_the_asked_size(tmp_path: Path) -> None:
    shot = tmp_path / "hall.png"
    done = render(shot, "320x200")
    assert done.returncode == 0, done.stderr
    image = cv2.imread(str(shot))
    assert image.shape == (200, 320, 3)
    assert image.reshape(-1, 3).std(axis=0).min() > 20  # a picture, not a blank buffer


def test_lobby_offscreen_refuses_to_run_without_a_file() -> None:
    done = subprocess.run([sys.executable, "-m", "vbank", "lobby", "--offscreen"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert "vbank lobby: --offscreen needs --screenshot FILE.png" in done.stderr


def test_the_hall_looks_like_the_golden_image(tmp_path: Path) -> None:
    """The entrance view on the software renderer; refresh after a deliberate change with
    VBANK_UPDATE_GOLDEN=1 and look at the new picture before committing it."""
    shot = tmp_path / "hall.png"
    done = render(shot)
    assert done.returncode == 0, done.stderr
    if os.environ.get("VBANK_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_bytes(shot.read_bytes())
    got, want = cv2.imread(str(shot)), cv2.imread(str(GOLDEN))
    assert want is not None, f"no golden image at {GOLDEN}"
    assert got.shape == want.shape
    difference = float(np.abs(got.astype(np.int16) - want.astype(np.int16)).mean())
    assert difference < GOLDEN_TOLERANCE, f"mean difference {difference:.2f} from {GOLDEN}"
    # and the parts a customer looks for are where they were: the blue counter signs
    sign_blue = (want[:, :, 0] > 120) & (want[:, :, 2] < 60)
    assert (sign_blue == ((got[:, :, 0] > 120) & (got[:, :, 2] < 60))).mean() > 0.99


def test_lobby_errors_are_lobby_errors() -> None:
    assert issubclass(LayoutError, LobbyError)
