"""Admission control: a loaded branch refuses new calls clearly and loses nobody's place."""

from __future__ import annotations

from pathlib import Path

from vbank.headless import Participant
from vbank.serverproc import start_server


async def waiting_customer(url: str, name: str) -> tuple[Participant, str]:
    c = Participant(url, name)
    await c.connect()
    await c.send({"type": "join", "service": "general_enquiry"})
    return c, str((await c.expect("queued"))["session_id"])


async def available_teller(url: str, name: str) -> Participant:
    t = Participant(url, name)
    await t.connect()
    await t.send({"type": "status", "status": "available"})
    await t.expect("teller", status="available")
    return t


async def test_lagging_event_loop_refuses_the_call_and_keeps_the_customer_queued(
        tmp_path: Path) -> None:
    # Any measurable lag exceeds this threshold, so every accept meets a "lagging" server.
    server = start_server(tmp_path, env={"VBANK_ADMISSION_MAX_LAG_MS": "0.000001",
                                         "VBANK_ADMISSION_LAG_SAMPLES": "1"})
    try:
        c, session_id = await waiting_customer(server.url, "alice")
        t = await available_teller(server.url, "tina")
        await t.send({"type": "accept"})
        refused = await t.expect("error")
        assert refused["code"] == "busy" and "keeps their place" in refused["message"]
        notice = await c.expect("notice")
        assert "keep your place" in notice["message"]
        assert not any(m["type"] == "paired" for m in c.messages)
        await c.send({"type": "ping"})
        await c.expect("pong")
        queue_now = [m for m in t.messages if m["type"] == "queues"][-1]
        waiting = next(s for s in queue_now["services"] if s["id"] == "general_enquiry")
        assert [w["session_id"] for w in waiting["waiting"]] == [session_id]
        for p in (c, t):
            await p.close()
    finally:
        server.stop()


async def test_full_media_worker_refuses_a_second_call(tmp_path: Path) -> None:
    # capacity alone refuses here: a loaded machine's event-loop lag (the other refusal,
    # tested above) once refused the first call of a full clean-clone run
    server = start_server(tmp_path, env={"VBANK_MEDIA_WORKERS": "1",
                                         "VBANK_MAX_SESSIONS_PER_WORKER": "1",
                                         "VBANK_ADMISSION_MAX_LAG_MS": "10000"})
    try:
        c1, _ = await waiting_customer(server.url, "alice")
        t1 = await available_teller(server.url, "tina")
        await t1.send({"type": "accept"})
        await t1.expect("paired")
        c2, second = await waiting_customer(server.url, "bob")
        t2 = await available_teller(server.url, "tom")
        await t2.send({"type": "accept"})
        assert (await t2.expect("error"))["code"] == "busy"
        await c2.expect("notice")
        # once the first call ends, the same customer is served
        await t1.send({"type": "end", "outcome": "completed"})
        await c1.expect("ended")
        await t2.send({"type": "accept"})
        assert (await t2.expect("paired"))["session_id"] == second
        for p in (c1, t1, c2, t2):
            await p.close()
    finally:
        server.stop()
