"""``vbank scenario run``: exit codes, the report, and failures that say what was seen."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription

from vbank.headless import Participant
from vbank.rtc.peer import HeadlessPeer, Reception
from vbank.scenario.actors import Actor
from vbank.serverproc import start_server
from vbank.speech.audio import FRAME_SAMPLES
from vbank.speech.conditions import read_wav, real_folder, speech_span

TELLER_CALL = """\
scenario: teller-call
description: a customer is served by a teller who greets them; they answer
service: account_opening
actors:
  customer: {kind: customer, name: Li Wei}
  teller: {kind: teller, name: Wang Fang}
steps:
  - customer: join
  - expect: {queue_position: 1}
  - teller: accept
  - expect: {paired_with: teller}
  - teller: {say: "Please hold your identity card to the camera."}
  - expect: {heard: "(?i)identity card", within_s: 20}
  - customer: {say: "Here is my identity card."}
  - expect: {actor: teller, heard: "(?i)identity card", within_s: 20}
  - teller: {say: "Thank you, that is all I need."}
  - customer: leave
assert:
  - recording: {min_duration_s: 3, audio: true, video: true}
"""

WRONG_SENTENCE = """\
scenario: wrong-sentence
service: account_opening
actors:
  customer: {kind: customer, name: Li Wei}
  teller: {kind: teller, name: Wang Fang}
steps:
  - customer: join
  - teller: accept
  - expect: {paired_with: teller}
  - teller: {say: "Please hold your identity card to the camera."}
  - expect: {heard: "(?i)interest rate", within_s: 8}
  - customer: leave
"""

NO_SUCH_PLACE = """\
scenario: no-such-place
service: loan_signing
actors:
  customer: {kind: customer, name: Li Wei, client: lobby3d}
  teller: {kind: teller, name: Wang Fang}
steps:
  - customer: {walk_to: "counter:loan_signing"}
  - customer: {walk_to: counter}
"""

MALL = """\
scenario: mall-mug
description: a customer too poor for two mugs buys one; the mall's stock is its own each run
service: general_enquiry
setup:
  mall_items:
    - {id: mug, name: Branch mug, points: 120, stock: 5, per_customer_limit: 3}
actors:
  customer: {kind: customer, name: Li Wei, points: 200}
steps:
  - customer: {redeem: {item: mug, quantity: 2, refused: "(?i)too few points"}}
  - customer: {redeem: {item: mug}}
  - expect: {event: redeemed}
  - expect: {points_balance: 80}
assert:
  - points: {earned: 0}
  - ledger: consistent
"""

NEEDS_AVATAR = """\
scenario: needs-avatar
service: general_enquiry
setup: {digital_human: on}
actors:
  customer: {kind: customer, name: Li Wei}
steps:
  - customer: join
"""


def vbank(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vbank", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_an_invalid_file_stops_the_run_before_anything_runs(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(TELLER_CALL)
    bad = tmp_path / "bad.yaml"
    bad.write_text(TELLER_CALL.replace("teller: accept", "teller: dance"))
    run = vbank("scenario", "run", str(good), str(bad), timeout=60)
    assert run.returncode == 2
    assert f"{bad}:10: unknown teller action 'dance'" in run.stderr
    assert "scenario teller-call" not in run.stdout and "passed" not in run.stdout

    walker = tmp_path / "walker.yaml"  # walking is for a customer in the 3D hall
    walker.write_text(TELLER_CALL.replace("  - customer: join\n",
                                          "  - customer: {walk_to: kiosk}\n"))
    run = vbank("scenario", "run", str(walker), timeout=60)
    assert run.returncode == 2
    assert "walk_to is for a 3D customer: give actor customer client: lobby3d" in run.stderr


def test_a_run_passes_what_happened_and_fails_what_did_not(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")  # a demo server: the demo admin sets up actors
    try:
        files = []
        for name, text in (("a", TELLER_CALL), ("b", WRONG_SENTENCE), ("c", NO_SUCH_PLACE),
                           ("d", NEEDS_AVATAR), ("e", MALL)):
            files.append(tmp_path / f"{name}.yaml")
            files[-1].write_text(text)
        out = tmp_path / "report.json"
        # the mall file twice: its items are created afresh for each run
        run = vbank("scenario", "run", *map(str, files), str(files[-1]), "--server",
                    server.url, "--json", str(out))
        admin = httpx.post(f"{server.url}/api/v1/auth/login",
                           json={"username": "admin", "password": "admin"}).json()
        items = httpx.get(f"{server.url}/api/v1/mall/items", headers={
            "Authorization": f"Bearer {admin['access_token']}"}).json()
    finally:
        server.stop()
    lines = run.stdout.splitlines()
    assert run.returncode == 1, run.stdout + run.stderr
    assert lines[-1] == "3 passed, 3 failed"
    assert "PASS teller-call" in run.stdout
    assert run.stdout.count("PASS mall-mug") == 2
    # each run had a mug of its own; what it did not sell was taken back afterwards
    mugs = [i for i in items if i["id"].startswith("mug-")]
    assert len(mugs) == 2 and all(i["stock"] == 0 for i in mugs), mugs
    # each failure says what was expected and what was seen
    wrong = run.stdout[run.stdout.index("scenario wrong-sentence"):]
    assert "heard: recognised" in wrong and "identity" in wrong
    assert "(1 later steps not run)" in wrong
    lost = run.stdout[run.stdout.index("scenario no-such-place"):]
    assert "walk_to \"counter:loan_signing\"" in lost.splitlines()[1] and \
        " ok " in lost.splitlines()[1]
    assert "walk_to: no 'counter' in the hall; one of" in lost
    assert "setup FAIL" in run.stdout and "not loaded" in run.stdout

    report = json.loads(out.read_text())
    assert (report["passed"], report["failed"]) == (3, 3)
    first = report["scenarios"][0]
    assert first["passed"] and all(step["ok"] for step in first["steps"])
    assert [a["ok"] for a in first["asserts"]] == [True]
    # the customer's turn got the teller's spoken reply: a voice-to-voice latency
    [turn] = first["turns"]
    assert turn["text"] == "Here is my identity card." and turn["voice_to_voice_ms"] > 0
    failed = report["scenarios"][1]["steps"][-1]
    assert not failed["ok"] and failed["line"] == 11 and "interest rate" in failed["action"]


def envelope(pcm: np.ndarray) -> np.ndarray:
    """Loudness of each 20 ms frame in dB, floored at -60."""
    x = pcm.astype(np.float64)
    frames = x[:len(x) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    return np.maximum(10 * np.log10(np.mean(frames ** 2, axis=1) / 32768 ** 2 + 1e-12), -60)


def likeness(sent: np.ndarray, received: np.ndarray) -> tuple[float, int]:
    """The best correlation of the sent envelope with a stretch of the received one, and
    the frame of the received audio where that stretch starts."""
    a, b = envelope(sent), envelope(received)
    return max((float(np.corrcoef(a, b[lag:lag + len(a)])[0, 1]), lag)
               for lag in range(len(b) - len(a) + 1))


async def test_play_sends_the_recording_over_webrtc_as_a_turn() -> None:
    """``{play: FILE.wav}``: the file's own audio arrives at the far end of a real peer
    connection, and the turn is timed from the end of its speech, not of the file (which
    ends with 0.4 s of silence)."""
    recording = real_folder() / "goforward.wav"
    actor = Actor("customer", {"kind": "customer"}, "http://127.0.0.1:9", "u", "p", [],
                  voice=None)  # type: ignore[arg-type]  # a recording needs no synthesizer
    sender = HeadlessPeer(None, voice=actor.voice)
    receiver, reception = RTCPeerConnection(), Reception()
    receiver.on("track", reception.consume)
    try:
        await receiver.setRemoteDescription(RTCSessionDescription(await sender.offer(),
                                                                  "offer"))
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.accept(receiver.localDescription.sdp)
        await sender.wait_connected()
        actor.participant = Participant(actor.server, "u", "p")
        actor.participant.peer = sender
        turn = await actor.play(recording, 4)
        await asyncio.sleep(0.5)  # the last packets on their way
        arrivals = list(reception.audio)
    finally:
        actor.voice.stop()
        await sender.close()
        await receiver.close()
        await reception.stop()
    assert actor.turns == [turn] and (turn.step, turn.text) == (4, "goforward.wav")
    assert all(len(pcm) == FRAME_SAMPLES for _, pcm in arrivals)  # one entry a frame
    received = np.concatenate([pcm for _, pcm in arrivals])
    sent = read_wav(recording)
    similar, lag = likeness(sent, received)
    assert similar > 0.9
    # the measure tells files apart: another person's words do not look like these
    assert likeness(read_wav(real_folder() / "librivox-0930.wav")[:len(sent)], received)[0] \
        < 0.6
    # the speech's last frame arrived when the turn says the speech ended (plus the
    # network's few tens of ms), not when the file's trailing silence did, 0.4 s later
    last = speech_span(sent)[1] // FRAME_SAMPLES - 1
    arrived = arrivals[lag + last][0]
    assert -0.05 < arrived - turn.spoken_end < 0.25, arrived - turn.spoken_end
