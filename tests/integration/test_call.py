"""A customer and a teller through a real server process, with real WebRTC and recording."""

from __future__ import annotations

import asyncio
import json
import signal

import av
import httpx
import pytest
import websockets

from vbank.headless import Participant
from vbank.serverproc import ServerProcess, start_server

SECONDS = 4.0


async def pair(server: ServerProcess, customer: str = "alice", teller: str = "tina",
               ) -> tuple[Participant, Participant, str]:
    c, t = Participant(server.url, customer), Participant(server.url, teller)
    await c.connect()
    await t.connect()
    await c.send({"type": "join", "service": "loan_signing"})
    queued = await c.expect("queued")
    await t.send({"type": "status", "status": "available", "skills": ["loan_signing"]})
    await t.expect("teller", status="available")
    await t.send({"type": "accept"})
    await t.expect("paired")
    await c.expect("paired")
    return c, t, str(queued["session_id"])


def decoded_frames(path: str) -> dict[str, int | float]:
    """Decode a recording with PyAV: frames per kind and the last video frame's time."""
    counts: dict[str, int | float] = {"video": 0, "audio": 0, "last_video_s": 0.0}
    with av.open(path) as container:
        for frame in container.decode(video=0):
            counts["video"] = int(counts["video"]) + 1
            counts["last_video_s"] = float(frame.time or 0)
    with av.open(path) as container:
        counts["audio"] = sum(1 for _ in container.decode(audio=0))
    return counts


async def test_customer_and_teller_exchange_media_and_both_sides_are_recorded(
        server: ServerProcess, video: list[bytes]) -> None:
    c, t, session_id = await pair(server)
    await c.start_media(session_id, video)
    await t.start_media(session_id, video)
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{server.url}/metrics")).text
    assert 'vbank_active_sessions{state="in_call"} 1.0' in metrics
    assert "vbank_queue_wait_seconds_count 1.0" in metrics
    await asyncio.sleep(SECONDS)
    for who in (c, t):
        assert who.peer is not None
        got = who.peer.reception.frames
        # the other side's media arrived: 15 fps video and 50 fps audio, give or take
        assert got["video"] >= 0.6 * 15 * SECONDS, (who.username, got)
        assert got["audio"] >= 0.6 * 50 * SECONDS, (who.username, got)
        assert who.peer.reception.video_size == (640, 480)
    await t.send({"type": "end", "outcome": "completed"})
    ended = await c.expect("ended")
    assert ended["outcome"] == "completed" and ended["reference"].startswith("VB")

    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {c.token}"}
        for _ in range(50):
            session = (await http.get(f"{server.url}/api/v1/sessions/{session_id}",
                                      headers=headers)).json()
            if len(session["recordings"]) == 2:
                break
            await asyncio.sleep(0.1)
        other = Participant(server.url, "carol")
        await other.login()
        denied = await http.get(f"{server.url}/api/v1/sessions/{session_id}",
                                headers={"Authorization": f"Bearer {other.token}"})
    assert denied.status_code == 403
    assert session["state"] == "ended" and session["outcome"] == "completed"
    assert sorted(r["role"] for r in session["recordings"]) == ["customer", "teller"]
    for rec in session["recordings"]:
        frames = decoded_frames(str(server.data / rec["path"]))
        assert frames["video"] >= 0.6 * 15 * SECONDS, (rec["role"], frames)
        assert frames["audio"] >= 0.6 * 50 * SECONDS, (rec["role"], frames)
        assert frames["last_video_s"] >= SECONDS * 0.7
        assert len(rec["sha256"]) == 64
    await c.close()
    await t.close()


async def test_teller_drop_requeues_customer_at_head_and_next_teller_gets_them(
        server: ServerProcess, video: list[bytes]) -> None:
    c, t, session_id = await pair(server)
    await c.start_media(session_id, video)
    await t.start_media(session_id, video)
    carol = Participant(server.url, "carol")
    await carol.connect()
    await carol.send({"type": "join", "service": "loan_signing"})
    await carol.expect("queued")

    await t.close()  # the teller's browser vanishes
    requeued = await c.expect("requeued")
    assert requeued["session_id"] == session_id and requeued["position"] == 1

    tom = Participant(server.url, "tom")
    await tom.connect()
    await tom.send({"type": "status", "status": "available"})
    await tom.expect("teller", status="available")
    await tom.send({"type": "accept"})
    paired = await tom.expect("paired")
    assert paired["session_id"] == session_id  # not carol, who joined earlier than the drop
    await c.expect("paired", after=0, session_id=session_id)
    await tom.start_media(session_id, video)
    assert c.peer is not None
    before = c.peer.reception.frames["video"]
    await asyncio.sleep(2)
    assert c.peer.reception.frames["video"] > before + 10  # the new teller's video flows
    for p in (c, tom, carol):
        await p.close()


async def test_bad_input_gets_clear_errors_while_the_call_continues(
        server: ServerProcess, video: list[bytes]) -> None:
    c, t, session_id = await pair(server)
    await c.start_media(session_id, video)
    await t.start_media(session_id, video)

    async def refused(message: dict[str, object] | str) -> dict[str, object]:
        """Send one bad thing; the error that answers it (other messages may interleave)."""
        mark = len(c.messages)
        await (c.ws.send(message) if isinstance(message, str) else c.send(message))
        return await c.expect("error", after=mark)

    bad = await refused({"type": "offer", "session_id": session_id,
                         "sdp": "v=0\r\nthis is not sdp"})
    assert bad["code"] == "bad_sdp"
    assert (await refused({"type": "offer", "session_id": session_id, "sdp": (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 bogus\r\n")}))[
        "code"] == "bad_sdp"
    assert (await refused("{not json"))["code"] == "bad_json"
    assert (await refused({"type": "accept"}))["code"] == "wrong_role"
    assert (await refused({"type": "offer", "session_id": "s_someone_else",
                           "sdp": "v=0"}))["code"] == "not_in_session"
    assert "already with a teller" in str((await refused({"type": "ask_for",
                                                          "who": "teller"}))["message"])
    assert (await refused({"type": "ask_for", "who": "wizard"}))["code"] == "bad_message"

    # another person's oversize message closes only their socket, with 1009
    carol = Participant(server.url, "carol")
    await carol.connect()
    await carol.ws.send(json.dumps({"type": "ping", "pad": "x" * 200_000}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        for _ in range(50):
            await carol.ws.send(json.dumps({"type": "ping"}))
            await asyncio.sleep(0.1)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    assert t.peer is not None
    before = t.peer.reception.frames["video"]
    await asyncio.sleep(1.5)
    assert t.peer.reception.frames["video"] > before + 10  # the call went on throughout
    await c.send({"type": "ping"})
    await c.expect("pong")
    for p in (c, t):
        await p.close()


async def test_tellers_serve_only_what_they_are_qualified_for(server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {server.login('admin')}"}
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{server.url}/api/v1/admin/users", headers=headers, json={
            "username": "lin", "password": "lin-secret-1", "role": "teller",
            "skills": ["loan_signing"]})
    assert r.status_code == 201, r.text
    t = Participant(server.url, "lin", "lin-secret-1")
    welcome = await t.connect()
    assert welcome["user"]["skills"] == ["loan_signing"]
    await t.send({"type": "status", "status": "available",
                  "skills": ["loan_signing", "risk_assessment"]})
    refused = await t.expect("error")
    assert refused["code"] == "wrong_role" and "risk_assessment" in refused["message"]
    await t.send({"type": "status", "status": "available", "skills": ["loan_signing"]})
    assert (await t.expect("teller"))["skills"] == ["loan_signing"]
    await t.close()


async def test_websocket_needs_a_valid_token_first(server: ServerProcess) -> None:
    url = server.url.replace("http", "ws") + "/ws"
    for first in ('{"type": "auth", "token": "forged"}', '{"type": "join"}', "garbage"):
        async with websockets.connect(url) as ws:
            await ws.send(first)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_customer_reconnects_within_grace_and_keeps_the_session(
        server: ServerProcess, video: list[bytes]) -> None:
    c, t, session_id = await pair(server)
    await c.start_media(session_id, video)
    await t.start_media(session_id, video)
    await c.close()
    await t.expect("peer", state="reconnecting")
    again = Participant(server.url, "alice")
    welcome = await again.connect()
    assert welcome["session"]["session_id"] == session_id
    assert welcome["session"]["state"] == "in_call"
    await again.start_media(session_id, video)  # a new peer connection, same session
    assert t.peer is not None
    before = t.peer.reception.frames["video"]
    await asyncio.sleep(1.5)
    assert t.peer.reception.frames["video"] > before + 10
    for p in (again, t):
        await p.close()


async def test_customer_who_never_returns_is_ended_after_grace(server: ServerProcess) -> None:
    c = Participant(server.url, "alice")
    await c.connect()
    await c.send({"type": "join", "service": "general_enquiry"})
    session_id = (await c.expect("queued"))["session_id"]
    await c.close()
    await asyncio.sleep(4)  # the test server's grace is 3 s
    again = Participant(server.url, "alice")
    welcome = await again.connect()
    assert "session" not in welcome
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server.url}/api/v1/sessions/{session_id}",
                           headers={"Authorization": f"Bearer {again.token}"})
    assert r.json()["outcome"] == "customer_left"
    await again.close()


async def test_kill_9_mid_call_leaves_a_readable_recording(
        server: ServerProcess, video: list[bytes]) -> None:
    c, t, session_id = await pair(server)
    await c.start_media(session_id, video)
    await t.start_media(session_id, video)
    await asyncio.sleep(5)
    server.stop(signal.SIGKILL)  # the server and its media workers, no chance to clean up
    for p in (c, t):
        await p.close()
    files = sorted((server.data / "recordings" / session_id).glob("*.webm"))
    assert [f.name for f in files] == ["customer-1.webm", "teller-1.webm"]
    for f in files:
        frames = decoded_frames(str(f))
        # everything up to about a second before the crash is there
        assert frames["video"] >= 0.5 * 15 * 5, (f.name, frames)
        assert frames["last_video_s"] >= 3.0, (f.name, frames)

    # the next start closes the session and registers the cut recordings with their hashes
    import hashlib

    again = start_server(server.data)
    try:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{again.url}/api/v1/sessions/{session_id}",
                               headers={"Authorization": f"Bearer {again.login('alice')}"})
        session = r.json()
        assert session["state"] == "ended" and session["outcome"] == "interrupted"
        assert sorted(x["role"] for x in session["recordings"]) == ["customer", "teller"]
        for rec in session["recordings"]:
            data = (server.data / rec["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == rec["sha256"]
            assert rec["duration_s"] >= 3.0
    finally:
        again.stop()


async def test_sigterm_ends_calls_and_finishes_recordings(
        server: ServerProcess, video: list[bytes]) -> None:
    import hashlib
    import sqlite3

    c, t, session_id = await pair(server)
    await c.start_media(session_id, video)
    await t.start_media(session_id, video)
    await asyncio.sleep(3)
    assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0
    for who in (c, t):
        ended = await who.expect("ended")
        assert ended["outcome"] == "server_shutdown"
    assert "vbank stopped" in server.output[-1]
    db = sqlite3.connect(server.data / "vbank.db")
    state = db.execute("select state, outcome from call_sessions where id = ?",
                       (session_id,)).fetchone()
    rows = db.execute("select role, path, sha256 from recordings where session_id = ?",
                      (session_id,)).fetchall()
    assert state == ("ended", "server_shutdown")
    assert sorted(r[0] for r in rows) == ["customer", "teller"]
    for _, path, digest in rows:
        data = (server.data / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest  # the file was complete when hashed
        assert decoded_frames(str(server.data / path))["video"] >= 0.6 * 15 * 3
    for p in (c, t):
        await p.close()


async def test_a_media_worker_dying_ends_its_calls_with_a_clear_outcome(
        server: ServerProcess, video: list[bytes]) -> None:
    import psutil

    c, t, session_id = await pair(server)
    await c.start_media(session_id, video)
    await t.start_media(session_id, video)
    workers = [p for p in psutil.Process(server.proc.pid).children()
               if "vbank.rtc.worker" in " ".join(p.cmdline())]
    assert len(workers) == 2
    hosting = [p for p in workers
               if any(f.path.endswith(".webm") for f in p.open_files())]
    assert len(hosting) == 1
    hosting[0].kill()
    for who in (c, t):
        assert (await who.expect("ended"))["outcome"] == "failed"
    # the branch goes on: a new call is placed on the surviving worker
    mark = len(c.messages)
    await c.send({"type": "join", "service": "loan_signing"})
    session2 = (await c.expect("queued", after=mark))["session_id"]
    await t.send({"type": "status", "status": "available"})
    await t.send({"type": "accept"})
    assert (await t.expect("paired", session_id=session2))["session_id"] == session2
    await c.start_media(session2, video)
    for p in (c, t):
        await p.close()


def random_messages(seed: int, count: int) -> list[object]:
    """Messages of every known type with fields of the wrong kind, and plain junk."""
    import random

    rng = random.Random(seed)
    junk: list[object] = [None, True, -1, 2**70, 1.5, "", "x" * 300, [], {}, ["a"], {"a": 1},
                          "loan_signing", "s_0000", "v=0\r\nm=audio 9 x"]
    types = ["join", "leave", "status", "accept", "end", "offer", "ping", "auth", "", None, 7]
    fields = ["service", "status", "skills", "outcome", "session_id", "sdp", "token", "type"]
    out: list[object] = []
    for _ in range(count):
        if rng.random() < 0.1:
            out.append(rng.choice(junk))
            continue
        message: dict[str, object] = {"type": rng.choice(types)}
        for name in rng.sample(fields, rng.randint(0, 4)):
            message[name] = rng.choice(junk)
        out.append(message)
    return out


async def test_random_signaling_messages_never_break_the_server(server: ServerProcess) -> None:
    c, t = Participant(server.url, "alice"), Participant(server.url, "tina")
    for who in (c, t):
        await who.connect()
    for i, message in enumerate(random_messages(seed=11, count=300)):
        who = c if i % 2 else t
        await who.ws.send(json.dumps(message))
    for who in (c, t):
        mark = len(who.messages)
        await who.send({"type": "ping"})
        await who.expect("pong", after=mark, timeout=30)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server.url}/health")).json() == {"status": "ok"}
    assert not [line for line in server.output if "Traceback" in line]
    for who in (c, t):
        await who.close()
