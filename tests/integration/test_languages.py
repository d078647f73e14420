"""Each customer is served in the language they chose, several languages in one server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from vbank.headless import Participant
from vbank.serverproc import start_server
from vbank.speech.tracks import SpeechTrack


async def test_the_language_chosen_at_join_reaches_the_teller_and_the_flow(
        tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        t, bob = Participant(server.url, "tina"), Participant(server.url, "bob")
        await t.connect()
        await bob.connect()
        await t.send({"type": "status", "status": "available", "skills": ["loan_signing"]})
        await t.expect("teller", status="available")

        # a language the branch does not speak, or no string at all: refused, nothing queued
        for bad in ("fr", 5, ""):
            mark = len(bob.messages)
            await bob.send({"type": "join", "service": "loan_signing", "language": bad})
            error = await bob.expect("error", after=mark)
            assert error["code"] == "bad_message" and "language" in error["message"]
        assert not [m for m in bob.messages if m["type"] == "queued"]

        await bob.send({"type": "join", "service": "loan_signing", "language": "zh"})
        queued = await bob.expect("queued")
        assert queued["language"] == "zh"
        # the teller sees, before accepting, that this customer is to be served in Chinese
        snapshot = await t.expect("queues", where=lambda m: any(
            s["waiting"] for s in m["services"] if s["id"] == "loan_signing"))
        waiting = next(s for s in snapshot["services"] if s["id"] == "loan_signing")["waiting"]
        assert [w["language"] for w in waiting] == ["zh"]

        await t.send({"type": "accept"})
        assert (await t.expect("paired"))["language"] == "zh"
        assert (await bob.expect("paired"))["language"] == "zh"
        await t.send({"type": "start_flow", "flow": "loan_signing"})
        flow = (await t.expect("flow"))["flow"]
        # the teller's script and the customer's page are in the session's language
        assert flow["language"] == "zh" and "身份证" in flow["say"]
        assert "身份证" in (await bob.expect("flow"))["flow"]["say"]
        # and the session is stored with its language, for the record and the evidence
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.get(f"/api/v1/sessions/{queued['session_id']}",
                               headers={"Authorization": f"Bearer {bob.token}"})
        assert r.status_code == 200 and r.json()["language"] == "zh"
        await bob.close()
        await t.close()
    finally:
        server.stop()


async def test_the_default_language_is_the_branch_setting(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"VBANK_LANG": "zh"})
    try:
        alice = Participant(server.url, "alice")
        await alice.connect()
        await alice.send({"type": "join", "service": "general_enquiry"})
        assert (await alice.expect("queued"))["language"] == "zh"
        await alice.close()
    finally:
        server.stop()


async def test_a_chinese_and_an_english_customer_each_hear_the_assistant_in_their_language(
        tmp_path: Path, video: list[bytes]) -> None:
    server = start_server(tmp_path, env={"VBANK_DIGITAL_HUMAN": "true",
                                         "VBANK_MEDIA_WORKERS": "1"}, timeout=120)
    mouths = [SpeechTrack(), SpeechTrack()]
    try:
        alice, bob = Participant(server.url, "alice"), Participant(server.url, "bob")
        peers = []
        listening_from = time.monotonic()
        for who, language, mouth in ((alice, "en", mouths[0]), (bob, "zh", mouths[1])):
            await who.connect()
            await who.send({"type": "join", "service": "general_enquiry",
                            "with": "digital_human", "language": language})
            paired = await who.expect("paired", timeout=20)
            assert paired["language"] == language
            peers.append(await who.start_media(paired["session_id"], video, voice=mouth))
        english = await alice.expect("caption", speaker="digital_human", timeout=30)
        chinese = await bob.expect("caption", speaker="digital_human", timeout=30)
        assert "digital assistant" in english["text"]
        assert "您好" in chinese["text"] and not any(c.isascii() and c.isalpha()
                                                    for c in chinese["text"])
        # and the Chinese greeting is really spoken on bob's line, not only captioned
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and \
                peers[1].reception.first_loud_after(listening_from, -35) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert peers[1].reception.first_loud_after(listening_from, -35) is not None
        await alice.close()
        await bob.close()
    finally:
        for mouth in mouths:
            mouth.stop()
        server.stop()
