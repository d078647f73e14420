"""What one signaling socket may send, through a real server (issue 18, finding 9):
messages past a kind's allowance are refused with ``rate_limited`` and the socket stays
open; an SDP offer with more media sections than allowed is ``bad_sdp``; an over-long text is
refused before anything is stored; a call records at most so much."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_reoffers import in_call, offer_sdp
from vbank.headless import Participant
from vbank.serverproc import ServerProcess, start_server

#: records the module's server lets one call make (``VBANK_MAX_SESSION_RECORDS``)
RECORDS = 6
#: an ID number with a wrong check digit: checked and recorded, never valid
WRONG_ID = "110105194912310021"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("signaling-limits") / "data",
                        env={"VBANK_MAX_SESSION_RECORDS": str(RECORDS)})
    yield proc
    proc.stop()


def query(server: ServerProcess, sql: str, *args: Any) -> int:
    with sqlite3.connect(server.data / "vbank.db") as db:
        return int(db.execute(sql, args).fetchone()[0])


async def pong(who: Participant) -> None:
    """The socket is still open and answers."""
    mark = len(who.messages)
    await who.send({"type": "ping"})
    await who.expect("pong", after=mark)


async def test_a_burst_of_join_and_leave_is_rate_limited_and_leaves_few_sessions(
        server: ServerProcess) -> None:
    bob = Participant(server.url, "bob")
    await bob.connect()
    before = query(server, "SELECT count(*) FROM call_sessions WHERE customer = ?", "bob")
    for _ in range(20):
        await bob.send({"type": "join", "service": "general_enquiry"})
        await bob.send({"type": "leave"})
    await pong(bob)
    limited = [m for m in bob.messages if m.get("code") == "rate_limited"]
    assert limited, bob.messages
    assert 0 < limited[0]["retry_after_s"] <= 10
    assert limited[0]["refused"] in ("join", "leave")
    made = query(server, "SELECT count(*) FROM call_sessions WHERE customer = ?",
                 "bob") - before
    assert 1 <= made <= 3  # six of join and leave together in any ten seconds: three joins
    await bob.close()


async def test_an_offer_with_24_media_sections_and_no_bundle_is_bad_sdp(
        server: ServerProcess) -> None:
    c, t, session_id = await in_call(server, "alice", "tina")
    pc, sdp = await offer_sdp(*["audio"] * 24, bundle=False)  # 27 KB: under the size limit
    mark = len(c.messages)
    await c.send({"type": "offer", "session_id": session_id, "sdp": sdp})
    refused = await c.expect("error", after=mark)
    assert refused["code"] == "bad_sdp" and "24 media sections" in refused["message"]
    assert not [m for m in c.messages[mark:] if m["type"] == "answer"]
    await pc.close()
    await t.send({"type": "end", "outcome": "completed"})
    await c.expect("ended")
    await c.close()
    await t.close()


async def test_an_oversize_name_is_refused_and_nothing_is_recorded(
        server: ServerProcess) -> None:
    c, t, session_id = await in_call(server, "carol", "tom")
    await t.send({"type": "start_flow", "flow": "loan_signing"})
    await c.expect("flow")
    records = "SELECT count(*) FROM session_records WHERE session_id = ?"
    before = query(server, records, session_id)
    mark = len(c.messages)
    await c.send({"type": "show_id", "name": "Carol " + "W" * 65_000, "id_number": WRONG_ID})
    refused = await c.expect("error", after=mark)
    assert refused["code"] == "bad_message"
    assert refused["message"] == "show_id's 'name' is longer than 100 characters"
    await pong(c)
    assert query(server, records, session_id) == before
    assert not [m for m in c.messages[mark:] if m["type"] == "identity_checked"]
    await t.send({"type": "end", "outcome": "completed"})
    await c.expect("ended")
    await c.close()
    await t.close()


async def test_a_call_records_at_most_its_limit(server: ServerProcess) -> None:
    c, t, session_id = await in_call(server, "alice", "tom")
    await t.send({"type": "start_flow", "flow": "loan_signing"})
    await c.expect("flow")
    records = "SELECT count(*) FROM session_records WHERE session_id = ?"
    refusal = None
    for _ in range(RECORDS + 2):
        mark = len(c.messages)
        await c.send({"type": "show_id", "name": "Alice Chen", "id_number": WRONG_ID})
        reply = await _identity_or_error(c, mark)
        if reply["type"] == "error":
            refusal = reply
            break
    assert refusal is not None and refusal["code"] == "flow"
    assert refusal["message"] == (f"this call has recorded all it may ({RECORDS} entries); "
                                  "nothing more can be added to it")
    held = query(server, records, session_id)
    assert held <= RECORDS
    mark = len(c.messages)
    await c.send({"type": "show_id", "name": "Alice Chen", "id_number": WRONG_ID})
    assert (await _identity_or_error(c, mark))["code"] == "flow"
    assert query(server, records, session_id) == held  # nothing more stored
    await t.send({"type": "end", "outcome": "completed"})
    await c.expect("ended")
    await c.close()
    await t.close()


async def _identity_or_error(who: Participant, mark: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for message in who.messages[mark:]:
            if message["type"] in ("identity_checked", "error"):
                return message
        await asyncio.sleep(0.02)
    raise AssertionError(f"no identity_checked or error: {who.messages[mark:]}")
