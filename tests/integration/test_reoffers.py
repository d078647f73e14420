"""A participant offering again and again in a call, through a real server (issue 18,
finding 10): no task of the media worker is left to be destroyed while pending."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection

from vbank.headless import Participant
from vbank.serverproc import ServerProcess, start_server


async def in_call(server: ServerProcess, customer: str, teller: str,
                  ) -> tuple[Participant, Participant, str]:
    """The customer in a loan-signing call with the teller; its session id."""
    c, t = Participant(server.url, customer), Participant(server.url, teller)
    await c.connect()
    await t.connect()
    await t.send({"type": "status", "status": "available", "skills": ["loan_signing"]})
    await t.expect("teller", status="available")
    await c.send({"type": "join", "service": "loan_signing"})
    session_id = str((await c.expect("queued"))["session_id"])
    await t.send({"type": "accept"})
    await c.expect("paired")
    return c, t, session_id


async def offer_sdp(*kinds: str, bundle: bool = True) -> tuple[RTCPeerConnection, str]:
    """An offer from aiortc with one media section per kind; without BUNDLE if asked."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for kind in kinds:
        pc.addTransceiver(kind)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    if not bundle:
        sdp = "\r\n".join(line for line in sdp.split("\r\n")
                          if not line.startswith("a=group:BUNDLE"))
    return pc, sdp


def test_re_offers_leave_no_task_destroyed_while_pending(tmp_path: Path) -> None:
    """Offers with two sections of a kind, one after another: each connection's second track
    of a kind was read by a task nobody kept, which the garbage collector destroyed pending
    once the connection was replaced ("Task was destroyed but it is pending!")."""
    # forty offers in a row are past any browser's, and past the offers' rate limit
    proc = start_server(tmp_path / "data", env={"VBANK_WS_OFFERS_PER_10S": "1000",
                                                "VBANK_MEDIA_WORKERS": "1"})

    async def run() -> None:
        c, t, session_id = await in_call(proc, "alice", "tina")
        peers = []
        for _ in range(40):
            pc, sdp = await offer_sdp("audio", "audio", "video", "video")
            peers.append(pc)
            mark = len(c.messages)
            await c.send({"type": "offer", "session_id": session_id, "sdp": sdp})
            await c.expect("answer", after=mark)
        await asyncio.sleep(5)  # the worker's collector runs as the offers' garbage grows
        await t.send({"type": "end", "outcome": "completed"})
        await c.expect("ended")
        await asyncio.sleep(1)
        for pc in peers:
            await pc.close()
        await c.close()
        await t.close()

    try:
        asyncio.run(run())
    finally:
        proc.stop()
    destroyed = [line for line in proc.output if "Task was destroyed" in line]
    assert destroyed == [], "\n".join(proc.output[-40:])
