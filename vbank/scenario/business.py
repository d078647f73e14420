"""Scenario actions and assertions for the business done in a call: signing, risk, evidence.

Mixed into ``ScenarioRun``: each ``_do_<action>`` sends what a person's page would send and
waits for the branch's answer, failing with the branch's own error message when refused.
Evidence and quality are read back the way an auditor reads them (an auditor account the
runner creates for itself on the server).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx

from vbank.avatar.signature import signature_png
from vbank.scenario.actors import Actor, StepFailed
from vbank.scenario.expectations import number_problem

if TYPE_CHECKING:
    from vbank.scenario.servers import Server

#: the headless camera's picture size (``runner._video``)
CAMERA_SIZE = (320, 240)
#: how long an action waits for the branch's answer
ANSWER_S = 15.0
#: how long ``answer_all`` by voice waits for each next question (the digital human reads
#: the question and its options first)
VOICE_QUESTION_S = 60.0
#: how long the evidence assertion waits for the package to be sealed after the call
SEAL_WAIT_S = 30.0


class BusinessActions:
    """The business half of a scenario run (see ``ScenarioRun``)."""

    actors: dict[str, Actor]
    servers: list[Server]
    http: httpx.AsyncClient
    shared: dict[str, Any]

    async def _admin(self, method: str, server: Server, path: str,
                     body: dict[str, Any] | None = None) -> dict[str, Any]:
        raise NotImplementedError

    # -------------------------------------------------------------- customer
    async def _do_show_id(self, actor: Actor, _: Any, __: int) -> None:
        from vbank.avatar.idcard import id_camera_frames

        name = str(actor.spec.get("name") or actor.key)
        number = str(actor.spec.get("id_number") or "")
        if not number:
            raise StepFailed(f"show_id: actor {actor.key} has no id_number")
        await actor.media_ready()
        if actor.spec.get("client") == "lobby3d":  # its camera holds the card up itself
            await self._request(actor, {"type": "show_id", "name": name, "id_number": number},
                                ("identity_checked",))
            return
        # the same size as the camera it replaces (the recording keeps the first size)
        frames = await asyncio.to_thread(id_camera_frames, name, number, *CAMERA_SIZE)
        participant = actor.participant
        if participant is None:
            raise StepFailed(f"{actor.key} is not connected")
        participant.show_frames(frames)
        await self._request(actor, {"type": "show_id", "name": name, "id_number": number},
                            ("identity_checked",))

    async def _do_sign(self, actor: Actor, name: str, _: int) -> None:
        document = next((m for m in reversed(actor.log) if m.get("type") == "document"), None)
        if document is None:
            document = await actor.wait_for(("document",), 0, ANSWER_S)
        image = await asyncio.to_thread(signature_png, name)
        await self._request(actor, {"type": "sign", "name": name,
                                    "document_sha256": document["sha256"], "image": image},
                            ("contract_signed",))

    async def _do_answer(self, actor: Actor, option: str, _: int) -> None:
        question = await self._open_question(actor, ANSWER_S)
        if question is None:
            raise StepFailed("answer: the questionnaire is already complete")
        await self._answer(actor, question, option)

    async def _do_answer_all(self, actor: Actor, how: Any, _: int) -> None:
        """Every remaining question the same way: by click, or said aloud."""
        by, option = ("click", how) if isinstance(how, str) else (
            str(how.get("by", "click")), str(how.get("option", "A")))
        if by not in ("click", "voice"):
            raise StepFailed("answer_all: by must be click or voice")
        while True:
            question = await self._open_question(actor, VOICE_QUESTION_S if by == "voice"
                                                 else ANSWER_S, done_ok=True)
            if question is None:
                return
            if by == "click":
                await self._answer(actor, question, option)
                continue
            letter = _option_id(question, option)
            mark = len(actor.log)
            await actor.say(f"Option {letter}.", 0)
            await actor.wait_for(("question", "risk_assessed", "error"), mark,
                                 VOICE_QUESTION_S)

    async def _do_acknowledge(self, actor: Actor, text: str, _: int) -> None:
        await actor.wait_for(("suitability",), 0, ANSWER_S)
        await self._request(actor, {"type": "acknowledge", "text": text}, ("acknowledgement",))

    # ---------------------------------------------------------------- teller
    async def _do_start_flow(self, actor: Actor, flow: str, _: int) -> None:
        await actor.media_ready()
        await self._request(actor, {"type": "start_flow", "flow": flow}, ("flow",))

    async def _do_push(self, actor: Actor, document: str, _: int) -> None:
        await self._request(actor, {"type": "push", "document": document},
                            ("document", "flow"))

    async def _do_verify_identity(self, actor: Actor, _: Any, __: int) -> None:
        """Like a teller, look at the snapshot first: wait for the face check to arrive."""
        await actor.wait_for(("face",), 0, ANSWER_S)
        await self._request(actor, {"type": "verify_identity"}, ("identity_verified",))

    async def _do_advance(self, actor: Actor, _: Any, __: int) -> None:
        """Next step by hand (the key terms: unread clauses are flagged as missing)."""
        await self._request(actor, {"type": "advance"}, ("flow",))

    async def _do_back(self, actor: Actor, _: Any, __: int) -> None:
        """Back from the consent step to the terms a skipped clause belongs to."""
        await self._request(actor, {"type": "back"}, ("flow",))

    # ------------------------------------------------------------ assertions
    async def _assert_evidence(self, want: Any) -> None:
        if want != "verified":
            raise StepFailed("evidence: the only check is evidence: verified")
        result = await self._auditor_get("verify")
        if not result.get("intact"):
            raise StepFailed(f"evidence: not intact: {result.get('problems')}")

    async def _assert_quality(self, want: dict[str, Any]) -> None:
        package = await self._auditor_get("")
        alerts = [q for q in package.get("qc", []) if q.get("kind") == "qc_alert"]
        missing = [a for a in alerts if (a.get("data") or {}).get("kind") ==
                   "missing_disclosure"]
        problems = [why for why in (
            number_problem(len(missing), want["missing_disclosures"], "missing disclosures")
            if "missing_disclosures" in want else None,
            number_problem(len(alerts), want["alerts"], "quality alerts")
            if "alerts" in want else None) if why]
        if problems:
            said = [(a.get("data") or {}) for a in alerts]
            raise StepFailed("quality: " + "; ".join(problems) + f"; alerts: {said}")

    async def _assert_risk_level(self, want: str) -> None:
        customer = self._customer()
        levels = [m.get("level") for m in customer.log if m.get("type") == "risk_assessed"]
        if not levels:
            raise StepFailed("risk_level: no risk assessment was completed")
        if levels[-1] != want:
            raise StepFailed(f"risk_level: wanted {want}, assessed {levels[-1]}")

    # --------------------------------------------------------------- helpers
    async def _request(self, actor: Actor, message: dict[str, Any],
                       answers: tuple[str, ...]) -> dict[str, Any]:
        mark = len(actor.log)
        await actor.send(message)
        reply = await actor.wait_for((*answers, "error"), mark, ANSWER_S)
        if reply["type"] == "error":
            raise StepFailed(f"{message['type']} refused: {reply.get('message')}")
        return reply

    async def _open_question(self, actor: Actor, timeout: float,
                             done_ok: bool = False) -> dict[str, Any] | None:
        """The latest question not yet answered (None once the questionnaire is done)."""
        deadline = time.monotonic() + timeout
        while True:
            answered = {m.get("question") for m in actor.log if m.get("type") == "_answered"}
            for m in reversed(actor.log):
                if m.get("type") == "risk_assessed" and done_ok:
                    return None
                if m.get("type") == "question":
                    if m["question"]["id"] not in answered:
                        return dict(m["question"])
                    break
            if time.monotonic() > deadline:
                if done_ok:
                    return None
                raise StepFailed(f"no open question within {timeout:g} s")
            await asyncio.sleep(0.05)

    async def _answer(self, actor: Actor, question: dict[str, Any], option: str) -> None:
        letter = _option_id(question, option)
        await self._request(actor, {"type": "answer", "question": question["id"],
                                    "option": letter}, ("question", "risk_assessed", "flow"))
        actor.log.append({"type": "_answered", "question": question["id"],
                          "_at": time.monotonic()})

    def _customer(self) -> Actor:
        return next(a for a in self.actors.values() if a.kind == "customer")

    async def _auditor_get(self, what: str) -> dict[str, Any]:
        """The customer's last session's evidence, read as an auditor once it is sealed."""
        customer = self._customer()
        if customer.last_session_id is None:
            raise StepFailed("evidence: the customer had no session")
        server = next(s for s in self.servers if s.url == customer.server)
        token = await self._auditor_token(server)
        path = f"/api/v1/evidence/{customer.last_session_id}" + (f"/{what}" if what else "")
        deadline = time.monotonic() + SEAL_WAIT_S
        while True:
            r = await self.http.get(server.url + path,
                                    headers={"Authorization": f"Bearer {token}"})
            if r.status_code == 200:
                return dict(r.json())
            if r.status_code != 404 or time.monotonic() > deadline:
                raise StepFailed(f"evidence: GET {path}: {r.status_code} {r.text[:200]}")
            await asyncio.sleep(0.5)

    async def _auditor_token(self, server: Server) -> str:
        key = f"auditor:{server.url}"
        if key not in self.shared:
            username = f"scenario-auditor-{secrets.token_hex(4)}"
            password = secrets.token_urlsafe(12)
            await self._admin("POST", server, "/api/v1/admin/users", {
                "username": username, "password": password, "role": "auditor",
                "display_name": "Scenario auditor"})
            self.shared[key] = (username, password)
        username, password = self.shared[key]
        r = await self.http.post(f"{server.url}/api/v1/auth/login",
                                 json={"username": username, "password": password})
        r.raise_for_status()
        return str(r.json()["access_token"])


def _option_id(question: dict[str, Any], option: str) -> str:
    ids = [str(o["id"]) for o in question["options"]]
    if option.lower() == "last":
        return ids[-1]
    if option.upper() not in ids:
        raise StepFailed(f"question {question['id']} has no option {option!r} ({ids})")
    return option.upper()
