"""Remote signing through a real server: bad input refused clearly, a crash survived.

Real ``vbank serve`` with media workers, headless customer and teller over WebRTC.
"""

from __future__ import annotations

import asyncio
import signal

import av
import httpx

from tests.integration.test_call import pair
from vbank.avatar.idcard import id_camera_frames
from vbank.avatar.signature import signature_png
from vbank.headless import Participant
from vbank.serverproc import ServerProcess, start_server

ALICE_ID = "11010519491231002X"


async def verified(c: Participant, t: Participant, session_id: str,
                   video: list[bytes]) -> None:
    """Media up, the signing flow started, Alice's ID shown and verified by the teller."""
    await c.start_media(session_id, video)
    await t.start_media(session_id, video)
    await t.send({"type": "start_flow", "flow": "loan_signing"})
    await t.expect("flow")
    c.show_frames(id_camera_frames("Alice Chen", ALICE_ID, 640, 480))
    await c.send({"type": "show_id", "name": "Alice Chen", "id_number": ALICE_ID})
    face = await t.expect("face", timeout=20)
    assert face["faces"] >= 1
    await t.send({"type": "verify_identity"})
    await t.expect("identity_verified")


async def test_bad_signing_input_gets_clear_errors_and_changes_nothing(
        server: ServerProcess, video: list[bytes]) -> None:
    c, t, session_id = await pair(server)
    await c.start_media(session_id, video)
    await t.start_media(session_id, video)
    await c.send({"type": "start_flow", "flow": "loan_signing"})  # a customer cannot
    assert (await c.expect("error"))["code"] == "wrong_role"
    await t.send({"type": "start_flow", "flow": "mortgage_signing"})
    assert "unknown flow" in (await t.expect("error"))["message"]
    await t.send({"type": "start_flow", "flow": "loan_signing"})
    await t.expect("flow")

    # a wrong check digit: told exactly, and the teller cannot verify it
    mark = len(c.messages)
    await c.send({"type": "show_id", "name": "Alice Chen", "id_number": "110105194912310021"})
    checked = await c.expect("identity_checked", after=mark)
    assert checked["id_valid"] is False and "check digit" in checked["problem"]
    assert checked["id_number"] == "110105********0021"  # never the whole number
    mark = len(t.messages)
    await t.send({"type": "verify_identity"})
    assert "valid ID" in (await t.expect("error", after=mark))["message"]

    # signing before the signature step, and questionnaire answers in a signing: refused
    mark = len(c.messages)
    await c.send({"type": "sign", "name": "Alice Chen", "document_sha256": "0" * 64,
                  "image": signature_png("Alice Chen")})
    assert "cannot sign at the step identity" in (await c.expect("error", after=mark))["message"]
    mark = len(c.messages)
    await c.send({"type": "answer", "question": "q1", "option": "A"})
    assert "cannot answer" in (await c.expect("error", after=mark))["message"]
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server.url}/api/v1/sessions/{session_id}",
                           headers={"Authorization": f"Bearer {server.login('alice')}"})
    assert r.json()["flow_step"] == "identity"
    await c.close()
    await t.close()


async def test_signature_must_be_for_the_pushed_contract(
        server: ServerProcess, video: list[bytes]) -> None:
    supervisor = Participant(server.url, "sam")
    await supervisor.connect()
    c, t, session_id = await pair(server)
    for _ in range(100):  # the first list may predate tina signing in
        if any(x["name"] == "tina" and x["session_id"] == session_id
               for m in supervisor.messages if m["type"] == "tellers" for x in m["tellers"]):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"no tellers list with tina in her call: {supervisor.messages}")
    await verified(c, t, session_id, video)
    await t.send({"type": "advance"})  # the teller skips the clauses: flagged, not blocked
    alert = await t.expect("qc_alert")
    assert alert["kind"] == "missing_disclosure"
    # the supervisor sees the same alert, with who was in the call; the customer does not
    seen = await supervisor.expect("qc_alert")
    assert (seen["teller"], seen["customer"], seen["disclosure"]) == (
        "tina", "Alice Chen", alert["disclosure"])
    assert not [m for m in c.messages if m["type"] == "qc_alert"]
    await asyncio.sleep(0.5)  # the flow's new state follows the alert
    teller_flows = [m["flow"] for m in t.messages if m["type"] == "flow"]
    assert teller_flows[-1]["alerts"] and not any(
        m["flow"]["alerts"] for m in c.messages if m["type"] == "flow")
    await c.send({"type": "push", "document": "x"})
    assert (await c.expect("error"))["code"] == "wrong_role"
    await t.send({"type": "push", "document": "../../etc/passwd"})
    assert "unknown document" in (await t.expect("error"))["message"]
    await t.send({"type": "push", "document": "personal-loan-contract"})
    document = await c.expect("document")
    assert "Personal Loan Contract" in document["text"]
    # consent is by voice; without it the signature is refused at the consent step
    mark = len(c.messages)
    await c.send({"type": "sign", "name": "Alice Chen", "document_sha256": document["sha256"],
                  "image": signature_png("Alice Chen")})
    assert "at the step consent" in (await c.expect("error", after=mark))["message"]
    for p in (c, t, supervisor):
        await p.close()


async def test_kill_9_mid_signing_resumes_from_the_last_confirmed_step(
        server: ServerProcess, video: list[bytes]) -> None:
    c, t, session_id = await pair(server)
    await verified(c, t, session_id, video)
    await asyncio.sleep(2)
    server.stop(signal.SIGKILL)
    for p in (c, t):
        await p.close()

    again = start_server(server.data, env={"VBANK_RECONNECT_GRACE_S": "3"})
    try:
        alice = again.login("alice")
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{again.url}/api/v1/sessions/{session_id}",
                               headers={"Authorization": f"Bearer {alice}"})
            session = r.json()
            assert (session["state"], session["outcome"]) == ("ended", "interrupted")
            assert session["flow_step"] == "disclosure"
            customer_part = next(x for x in session["recordings"] if x["role"] == "customer")
            with av.open(str(server.data / customer_part["path"])) as container:
                assert sum(1 for _ in container.decode(video=0)) > 15  # readable to the crash
            # what was recorded before the crash is sealed and verifies
            auditor = {"Authorization": f"Bearer {again.login('audrey')}"}
            check = await http.get(f"{again.url}/api/v1/evidence/{session_id}/verify",
                                   headers=auditor)
            assert check.json() == {"intact": True, "problems": []}

        # Alice comes back: the new session carries on from the disclosure step
        c2, t2, second = await pair(again)
        queued = next(m for m in c2.messages if m["type"] == "queued")
        assert queued["resumes"] == {"session_id": session_id, "step": "disclosure"}
        await c2.start_media(second, video)
        await t2.start_media(second, video)
        await t2.send({"type": "start_flow", "flow": "loan_signing"})
        flow = (await t2.expect("flow"))["flow"]
        assert flow["step"] == "disclosure"
        assert flow["identity"]["verified_by"] == "tina"
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{again.url}/api/v1/sessions/{second}",
                               headers={"Authorization": f"Bearer {alice}"})
        assert r.json()["resumed_from"] == session_id
        await c2.close()
        await t2.close()
    finally:
        again.stop()
