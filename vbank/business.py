"""Business inside a call: runs a session's flow (signing, risk) and acts on what it decides.

The glue between the flow state machine (``domain.flowrun``), the people (WebSocket
messages to the customer, the teller and supervisors), the media node (snapshots, ears on
each leg, the digital human's lines) and the database (session records for the evidence,
the flow's saved state, risk assessments). Every command first changes the run, then
records and tells: a crash between the two loses a message, never a confirmed step.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vbank.auth import Role
from vbank.config import Settings
from vbank.domain import DomainError
from vbank.domain.flowrun import FlowEvent, FlowRun
from vbank.domain.flows import PERSON_PHRASES, Flow, load_flows
from vbank.domain.quality import words_of
from vbank.domain.risk import RiskError, RiskLevel, suitability
from vbank.domain.risk_answers import answer_phrases, option_from_speech
from vbank.domain.risk_questionnaire import load_questionnaire
from vbank.live import Connection, LiveSession
from vbank.media.events import Caption, Said, Utterance
from vbank.rewards import Rewards
from vbank.rtc import RtcError
from vbank.rtc.worker import MediaPool
from vbank.store.models import CallSession, SessionRecord

log = logging.getLogger(__name__)

CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "assets" / "contracts"
#: how old an interrupted session may be and still be carried on by the next visit
RESUME_WITHIN = timedelta(days=1)
#: snapshots taken while no face is found, a second apart, before the customer is told
SNAPSHOT_TRIES = 3
#: the largest signature image accepted (a PNG data URL, decoded)
MAX_SIGNATURE_BYTES = 48_000
#: how each flow event is kept in the session's records (what the evidence package shows)
RECORD_KIND = {
    "identity_checked": "identity", "identity_verified": "identity", "face": "snapshot",
    "document": "document", "consent": "consent", "consent_refused": "consent",
    "consent_early": "consent", "back": "step",
    "contract_signed": "signature", "answer": "answer", "risk_assessed": "answer",
    "suitability": "step", "acknowledgement": "acknowledgement", "step": "step",
    "qc_alert": "qc_alert", "disclosure_marked": "qc_result", "complete": "qc_result",
}
#: events the customer and teller are told about as a message of that type
TOLD = {"identity_checked", "identity_verified", "face", "consent", "consent_refused",
        "consent_early", "contract_signed", "risk_assessed", "suitability", "acknowledgement"}
#: events for the bank's side only: the teller (and supervisors, for alerts)
INTERNAL = {"disclosure_marked", "qc_alert"}


@dataclass(frozen=True, slots=True)
class Resumed:
    """An interrupted session's flow, to be carried on by a new session."""

    session_id: str
    run: FlowRun


class Hub(Protocol):
    """What the flows in calls use of the branch hub (``vbank.branch.Branch``), which owns
    them: the database, the settings, the media nodes, the points, the people signed in
    and their live sessions, and the hand-over to a person."""

    @property
    def db(self) -> async_sessionmaker[AsyncSession]: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def media(self) -> MediaPool: ...
    @property
    def rewards(self) -> Rewards | None: ...
    @property
    def connections(self) -> dict[str, Connection]: ...

    async def send_to(self, username: str, message: dict[str, Any]) -> None: ...

    def session_of_customer(self, username: str) -> LiveSession | None: ...

    def session_of_teller(self, username: str) -> LiveSession | None: ...

    async def hand_over_to_person(self, live: LiveSession) -> None: ...


class Business:
    """The flows of every live session; owned by the branch."""

    def __init__(self, branch: Hub) -> None:
        self.branch = branch
        self.flows: dict[str, Flow] = load_flows()
        self._locks: dict[str, asyncio.Lock] = {}
        #: entries each live session has recorded (``max_session_records``)
        self._recorded: dict[str, int] = {}
        self._key: Any = None  # the branch's evidence signing key, read on first seal
        self._stamper: Any = None  # the timestamp authority, if configured (first seal)

    # ----------------------------------------------------------- starting
    async def start_flow(self, conn: Connection, flow_id: str) -> None:
        live = self._teller_session(conn)
        if flow_id not in self.flows:
            raise DomainError(f"unknown flow {flow_id!r}")
        if live.run is not None and live.run.flow.id == flow_id and not live.run.complete:
            live.run.mode = "teller"  # taken over from the digital human or another teller
            await self._begin(live, live.run)
            return
        if live.run is not None and not live.run.complete:
            raise DomainError(f"the flow {live.run.flow.id} is still running")
        await self._begin(live, FlowRun(self.flows[flow_id], "teller", live.language))

    async def start_for_agent(self, live: LiveSession) -> bool:
        """The digital human took a customer: run the service's flow if it has one."""
        flow = next((f for f in self.flows.values() if f.service == live.service), None)
        if flow is None:
            return False
        if live.run is None or live.run.flow.id != flow.id:
            live.run = FlowRun(flow, "digital_human", live.language)
        live.run.mode = "digital_human"
        await self._begin(live, live.run)
        return True

    async def resumable(self, customer: str, service: str) -> Resumed | None:
        """The flow of the customer's latest session of this service if a crash cut it
        short (outcome ``interrupted``) within the last day: carried on from its last
        confirmed step."""
        since = datetime.now(UTC) - RESUME_WITHIN
        async with self.branch.db() as db:
            row = (await db.execute(
                select(CallSession).where(CallSession.customer == customer,
                                          CallSession.service == service)
                .order_by(CallSession.created_at.desc()).limit(1))).scalar_one_or_none()
        if row is None or row.outcome != "interrupted" or not row.flow or \
                not row.flow_state or row.flow not in self.flows or \
                _aware(row.created_at) < since:
            return None
        run = FlowRun.restore(self.flows[row.flow], row.flow_state)
        return None if run.complete else Resumed(row.id, run)

    def has_flow(self, service: str) -> bool:
        return any(f.service == service for f in self.flows.values())

    async def service_changed(self, live: LiveSession, previous: str) -> None:
        """The customer asked the digital human for another service: in the evidence, who
        asked for what, when (the words are in the captions before it)."""
        await self._record(live, "service_changed", "customer",
                           {"from": previous, "to": live.service})

    async def teller_joined(self, live: LiveSession) -> None:
        """A teller took over a session whose flow already ran (hand-over, requeue)."""
        if live.run is not None:
            live.run.mode = "teller"
            await self._tell_flow(live, live.run)

    async def seal(self, session_id: str) -> dict[str, Any] | None:
        """Seal an ended session's evidence package; the ``session_sealed`` message, if
        sealed (None: no such session)."""
        from vbank.store.evidence import seal_session
        from vbank.store.evidence_keys import signing_key
        from vbank.store.timestamps import authority

        settings = self.branch.settings
        if self._key is None:
            self._key = signing_key(settings.evidence_key_path, settings.evidence_keyring_path)
            self._stamper = authority(settings)
        entry = await seal_session(self.branch.db, settings.data, session_id, self._key,
                                   stamp=self._stamper.stamp if self._stamper else None)
        if entry is None:
            return None
        self._locks.pop(session_id, None)
        self._recorded.pop(session_id, None)
        return {"type": "session_sealed", "session_id": session_id,
                "seq": entry.seq, "manifest_sha256": entry.manifest_sha256,
                "sealed_at": entry.sealed_at.isoformat()}

    async def _begin(self, live: LiveSession, run: FlowRun) -> None:
        from vbank.domain.products import load_products

        run.labels = {p.id: p.name.get(run.language) for p in load_products().values()}
        live.run = run
        await self._publish(live, run.start())

    async def media_ready(self, live: LiveSession) -> None:
        """A participant's media connected: (re)attach the ears the flow needs."""
        if live.run is not None and not live.run.complete:
            await self._listen(live)

    # ----------------------------------------------------------- commands
    async def show_id(self, conn: Connection, name: str, id_number: str) -> None:
        from vbank.domain.identity import InvalidIdNumber, check_resident_id

        live = self._customer_session(conn)
        run = self._run(live)
        try:
            checked = check_resident_id(id_number)
            masked, valid, problem = checked.masked, True, ""
        except InvalidIdNumber as exc:
            masked, valid, problem = _mask(id_number), False, str(exc)
        now = time.time()
        await self._publish(live, run.show_id(name, masked, valid, conn.display_name,
                                              problem, at=now))
        if valid:
            await self._snapshot(live)

    async def _snapshot(self, live: LiveSession) -> None:
        """A face picture from the customer's video; a few tries while they hold the card
        up (the first picture may still show the moment before)."""
        shot: dict[str, Any] = {}
        for attempt in range(SNAPSHOT_TRIES):
            try:
                shot = await self.branch.media.snapshot(live.id, "customer")
            except (RtcError, KeyError) as exc:
                await self.branch.send_to(live.customer, {
                    "type": "error", "code": getattr(exc, "code", "no_video"),
                    "message": f"no picture from your camera yet: {exc}"})
                return
            if shot["faces"] or attempt == SNAPSHOT_TRIES - 1:
                break
            await asyncio.sleep(1.0)
        path = self._relative(Path(shot["path"]))
        events = self._run(live).face_seen(int(shot["faces"]), path, time.time())
        await self._publish(live, events, files={"face": (path, shot["sha256"])})

    async def verify_identity(self, conn: Connection) -> None:
        live = self._teller_session(conn)
        await self._publish(live, self._run(live).verify_identity(conn.username, time.time()))

    async def advance(self, conn: Connection) -> None:
        live = self._teller_session(conn)
        await self._publish(live, self._run(live).advance(conn.username))

    async def back(self, conn: Connection) -> None:
        """The teller goes back to read a clause they skipped (before consent)."""
        live = self._teller_session(conn)
        await self._publish(live, self._run(live).back(conn.username))

    async def push(self, conn: Connection, document: str) -> None:
        live = self._teller_session(conn)
        await self._push(live, document)

    async def _push(self, live: LiveSession, document: str) -> None:
        from vbank.domain.products import load_products

        run = self._run(live)
        if document in load_products():  # a product sheet: the product the customer wants
            run.product = document
            if run.step.kind == "suitability" and run.suitability is None:
                await self._check_suitability(live, run)
            await self._tell_flow(live, run)
            return
        source = CONTRACTS_DIR / f"{document}.md"
        if "/" in document or not source.is_file():
            raise DomainError(f"unknown document {document!r}")
        content = source.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        path = self._session_dir(live) / "documents" / source.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        relative = self._relative(path)
        text = content.decode("utf-8")
        title = text.splitlines()[0].lstrip("# ").strip() if text else document
        await self._publish(live, run.push_document(document, digest),
                            files={"document": (relative, digest)})
        message = {"type": "document", "session_id": live.id, "id": document, "title": title,
                   "sha256": digest, "text": text}
        await self._tell(live, message)

    async def sign(self, conn: Connection, name: str, document_sha256: str,
                   image: str) -> None:
        live = self._customer_session(conn)
        run = self._run(live)
        png = _png_from_data_url(image)
        path = self._session_dir(live) / f"signature-{int(time.time() * 1000)}.png"
        relative = self._relative(path)
        events = run.sign(name, document_sha256, conn.display_name, relative, time.time())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        digest = hashlib.sha256(png).hexdigest()
        await self._publish(live, events, files={"signature": (relative, digest)})

    async def answer(self, conn: Connection, question: str, option: str) -> None:
        """A click on a questionnaire option."""
        live = self._customer_session(conn)
        run = self._run(live)
        await self._publish(live, run.answer(question, option.upper(), time.time(),
                                             _questions()))

    async def acknowledge(self, conn: Connection, text: str) -> None:
        live = self._customer_session(conn)
        await self._publish(live, self._run(live).acknowledge(text, time.time()))

    # ----------------------------------------------------------- media events
    async def on_speech(self, live: LiveSession, heard: Utterance) -> None:
        """An utterance of the customer or teller, recognised on the media node."""
        role, text, phrase, at = heard.role, heard.text, heard.phrase, heard.at
        speaker = "customer" if role == "customer" else (live.teller or "teller")
        shown = text or str(phrase or "")
        caption = {"type": "caption", "session_id": live.id, "speaker": role, "text": shown}
        await self._tell(live, caption)
        await self._record(live, "caption", speaker, {"speaker": role, "text": shown,
                                                      "phrase": phrase, "at": at})
        run = live.run
        if run is None or run.complete:
            return
        if role == "customer" and run.mode == "digital_human" and \
                _asks_for_person(text, phrase, run.language):
            # said first, then handed over (``on_agent_said``): the flow's state goes along
            await self._agent_say(live, [(_PUTTING_THROUGH.get(run.language,
                                                               _PUTTING_THROUGH["en"]),
                                          "hand_over")], replace=True)
            return
        if role == "customer" and run.step.kind == "questionnaire":
            events = self._voice_answer(run, text, phrase, at)
            if not events and run.mode == "digital_human":
                again = _REPEAT_OPTION.get(run.language, _REPEAT_OPTION["en"])
                await self._agent_say(live, [(again, "repeat")])
        elif role == "customer":
            events = run.customer_said(text, phrase, at)
            if not events and run.mode == "digital_human":
                await self._agent_retry(live, run)
        else:
            spotted = {*heard.spotted, *([phrase] if phrase else [])}
            events = run.bank_said(speaker, text, at, frozenset(spotted))
        await self._publish(live, events)

    async def on_agent_said(self, live: LiveSession, said: Said) -> None:
        """The digital human finished a line; what it said is checked like a teller's."""
        run = live.run
        if run is None:
            return
        if said.key == "hand_over":
            await self.branch.hand_over_to_person(live)
            return
        await self._publish(live, run.bank_said("digital_human", said.text, said.at))

    async def on_caption(self, live: LiveSession, caption: Caption) -> None:
        speaker = caption.speaker
        await self._record(live, "caption", "digital_human" if speaker == "digital_human"
                           else live.customer, {"speaker": speaker, "text": caption.text,
                                                "at": caption.at or time.time()})

    async def on_interrupted(self, live: LiveSession) -> None:
        """The customer cut in: lines the flow still needs are said again."""
        run = live.run
        if run is not None and run.mode == "digital_human" and run.step.kind == "disclosure":
            await self._agent_say(live, [(d.text.get(run.language), f"disclosure:{d.id}")
                                         for d in run.step.disclosures if d.id not in run.marked])

    # ----------------------------------------------------------- publishing
    async def _publish(self, live: LiveSession, events: list[FlowEvent],
                       files: dict[str, tuple[str, str]] | None = None) -> None:
        """Record, tell and act on what the flow decided; then save its state."""
        run = self._run(live)
        lock = self._locks.setdefault(live.id, asyncio.Lock())
        async with lock:
            for event in events:
                kind = RECORD_KIND.get(event.kind)
                if kind is not None:
                    path, digest = None, None
                    if event.kind == "face":
                        path, digest = (files or {}).get("face", (None, None))
                    elif event.kind == "document":
                        path, digest = (files or {}).get("document", (None, None))
                    elif event.kind == "contract_signed":
                        path, digest = (files or {}).get("signature", (None, None))
                    await self._record(live, kind, self._actor_of(live, event),
                                       {"event": event.kind, **event.data}, path, digest)
                message = {"type": event.kind, "session_id": live.id, **event.data}
                if event.kind in TOLD:
                    await self._tell(live, message)
                elif event.kind in INTERNAL and live.teller:
                    await self.branch.send_to(live.teller, message)
                if event.kind == "qc_alert":
                    await self._tell_supervisors(live, message)
            await self._save(live, run)
        await self._tell_flow(live, run)
        await self._act(live, run, events)
        rewards = self.branch.rewards
        for event in events:
            if rewards is not None and event.kind in ("contract_signed", "risk_assessed"):
                await rewards.award(live.customer, event.kind, live.id)

    async def _act(self, live: LiveSession, run: FlowRun, events: list[FlowEvent]) -> None:
        """Do what the events ask of the branch: ears, the digital human's lines, risk."""
        steps = [e for e in events if e.kind == "step"]
        if steps or any(e.kind == "ask" for e in events):
            await self._listen(live)
        if run.mode == "digital_human" and steps:
            await self._agent_steps(live, run, steps)
        if (steps and run.step.kind == "questionnaire") or any(e.kind == "ask" for e in events):
            await self._ask(live, run)
        if steps and run.step.kind == "suitability":
            await self._check_suitability(live, run)
        if any(e.kind == "questionnaire_complete" for e in events):
            await self._assess(live, run)

    def _voice_answer(self, run: FlowRun, text: str, phrase: str | None,
                      at: float) -> list[FlowEvent]:

        question = _next_question(run)
        if question is None:
            return []
        q = load_questionnaire().question(question)
        option = option_from_speech(q, phrase or text) or option_from_speech(q, text)
        return run.answer(question, option, at, _questions()) if option else []

    async def _ask(self, live: LiveSession, run: FlowRun) -> None:

        question_id = _next_question(run)
        if question_id is None:
            return
        questionnaire = load_questionnaire()
        q = questionnaire.question(question_id)
        ids = [x.id for x in questionnaire.questions]
        lang = run.language
        await self.branch.send_to(live.customer, {
            "type": "question", "session_id": live.id, "index": ids.index(q.id) + 1,
            "total": len(ids), "question": {
                "id": q.id, "text": q.text.get(lang),
                "options": [{"id": o.id, "text": o.text.get(lang)} for o in q.options]}})
        if run.mode == "digital_human":
            options = "; ".join(f"{'选项' if lang == 'zh' else 'option'} {o.id}: "
                                f"{o.text.get(lang)}" for o in q.options)
            # after a click the question still being read is stale: the next one replaces it
            await self._agent_say(live, [(f"{q.text.get(lang)} {options}.", f"ask:{q.id}")],
                                  replace=bool(run.answers))

    async def _assess(self, live: LiveSession, run: FlowRun) -> None:
        from vbank.store.risk import record_assessment

        try:
            async with self.branch.db.begin() as db:
                row = await record_assessment(
                    db, live.customer, dict(run.answers), datetime.now().astimezone(),
                    session_id=live.id, per_day=self.branch.settings.risk_attempts_per_day)
                level, score = row.level, row.score
        except RiskError as exc:
            run.answers = {}
            await self.branch.send_to(live.customer, {"type": "error", "code": "flow",
                                                      "message": str(exc)})
            return
        await self._publish(live, run.assessed(level, score))

    async def _check_suitability(self, live: LiveSession, run: FlowRun) -> None:
        from vbank.domain.products import load_products

        products = load_products()
        product = products.get(run.product or "")
        if product is None:
            return  # the teller pushes the product the customer asked about
        verdict = suitability(RiskLevel(run.level) if run.level else None, product.risk)
        await self._publish(live, run.checked_suitability(
            product.id, verdict.suitable, verdict.needs_acknowledgement, verdict.allowed,
            verdict.reason))

    async def _agent_steps(self, live: LiveSession, run: FlowRun,
                           steps: list[FlowEvent]) -> None:
        """The digital human says the steps just entered (a passing step such as the risk
        result too), then the current step's clauses. What it had not yet said of an earlier
        step (a question the customer already answered by click) is dropped."""
        lines = [(str(e.data["say"]), f"step:{e.data['step']}") for e in steps]
        step = run.step
        lines += [(d.text.get(run.language), f"disclosure:{d.id}") for d in step.disclosures
                  if d.id not in run.marked]
        if step.kind == "signature" and run.flow.document and \
                run.flow.document not in run.documents:
            await self._push(live, run.flow.document)
        await self._agent_say(live, lines, end=step.kind == "sealed", replace=True)

    async def _agent_retry(self, live: LiveSession, run: FlowRun) -> None:
        if run.step.kind == "consent":
            await self._agent_say(live, [(str(run.public()["say"]), "repeat")])

    async def _agent_say(self, live: LiveSession, lines: list[tuple[str, str]],
                         end: bool = False, replace: bool = False) -> None:
        client = self.branch.media.placement.get(live.id)
        if client is None or not live.agent:
            return
        try:
            await client.request("agent_say", session_id=live.id, lines=lines, end=end,
                                 replace=replace,
                                 expect=self._expected_answers(self._run(live)))
        except RtcError as exc:
            log.warning("digital human of %s cannot speak: %s", live.id, exc)

    def _expected_answers(self, run: FlowRun) -> list[str]:
        person = PERSON_PHRASES.get(run.language, []) if run.mode == "digital_human" else []
        return [*self._step_answers(run), *person]

    def _step_answers(self, run: FlowRun) -> list[str]:
        if run.step.kind == "questionnaire":

            question = _next_question(run)
            return answer_phrases(load_questionnaire().question(question), run.language) \
                if question else []
        index = next((i for i, s in enumerate(run.flow.steps) if s.kind == "consent"), None)
        if index is None or run.step.kind not in ("consent", "disclosure"):
            return []
        step = run.flow.steps[index]
        return [*step.expect.get(run.language, ()), *step.refuse.get(run.language, ())]

    async def _listen(self, live: LiveSession) -> None:
        """Ears on the customer (answers) and, with a teller, on the teller (QC)."""
        run = live.run
        client = self.branch.media.placement.get(live.id)
        if run is None or client is None:
            return
        try:
            if live.agent:
                await client.request("agent_say", session_id=live.id, lines=[],
                                     expect=self._expected_answers(run))
                return
            await client.request("listen", session_id=live.id, role="customer",
                                 expect=self._expected_answers(run), spot=[],
                                 language=run.language)
            clauses = [part for d in run.step.disclosures if d.id not in run.marked
                       for part in _clause_parts(d.text.get(run.language))]
            # a keyphrase search finds clauses (and promises) in 0.1 s; a grammar of long
            # clauses takes ~20 s on speech that is none of them (PocketSphinx's filler loop)
            await client.request("listen", session_id=live.id, role="teller", expect=[],
                                 spot=[*run.flow.forbidden.get(run.language, ()), *clauses],
                                 language=run.language)
        except RtcError as exc:
            log.info("ears for %s not attached yet: %s", live.id, exc)

    # ----------------------------------------------------------- helpers
    def _run(self, live: LiveSession) -> FlowRun:
        if live.run is None:
            raise DomainError("no business flow is running in this call")
        return live.run

    def _customer_session(self, conn: Connection) -> LiveSession:
        live = self.branch.session_of_customer(conn.username)
        if live is None or live.state != "in_call":
            raise DomainError("you are not in a call")
        return self._with_room(live)

    def _teller_session(self, conn: Connection) -> LiveSession:
        live = self.branch.session_of_teller(conn.username)
        if live is None or live.state != "in_call":
            raise DomainError("you are not in a call")
        return self._with_room(live)

    def _with_room(self, live: LiveSession) -> LiveSession:
        """The session, if a person's command may still add to its records: a customer
        repeating ``show_id`` or ``acknowledge`` would otherwise fill the evidence without
        end. What the branch records by itself (captions, alerts) goes on being recorded."""
        limit = self.branch.settings.max_session_records
        if self._recorded.get(live.id, 0) >= limit:
            raise DomainError(f"this call has recorded all it may ({limit} entries); "
                              "nothing more can be added to it")
        return live

    def _actor_of(self, live: LiveSession, event: FlowEvent) -> str:
        if event.kind in ("identity_verified", "disclosure_marked", "qc_alert", "back"):
            by = event.data.get("by") or event.data.get("speaker")
            if by:
                return str(by)
        if event.kind in ("identity_checked", "face", "consent", "consent_refused",
                          "consent_early", "contract_signed", "answer", "acknowledgement"):
            return live.customer
        return "system"

    def _session_dir(self, live: LiveSession) -> Path:
        return self.branch.settings.data / "sessions" / live.id

    def _relative(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.branch.settings.data.resolve()))
        except ValueError:
            return str(path)

    async def _record(self, live: LiveSession, kind: str, actor: str, data: dict[str, Any],
                      path: str | None = None, sha256: str | None = None) -> None:
        async with self.branch.db.begin() as db:
            db.add(SessionRecord(session_id=live.id, at=datetime.now(UTC), kind=kind,
                                 actor=actor, data=_jsonable(data), path=path, sha256=sha256))
        self._recorded[live.id] = self._recorded.get(live.id, 0) + 1

    async def _save(self, live: LiveSession, run: FlowRun) -> None:
        async with self.branch.db.begin() as db:
            row = await db.get(CallSession, live.id)
            if row is not None:
                row.flow, row.flow_step, row.flow_state = run.flow.id, run.step.id, run.state()

    async def _tell(self, live: LiveSession, message: dict[str, Any]) -> None:
        await self.branch.send_to(live.customer, message)
        if live.teller:
            await self.branch.send_to(live.teller, message)

    async def _tell_flow(self, live: LiveSession, run: FlowRun) -> None:
        """The flow's state to both sides; quality alerts are for the bank's side only."""
        public = run.public()
        if live.teller:
            await self.branch.send_to(live.teller, {"type": "flow", "session_id": live.id,
                                                    "flow": public})
        await self.branch.send_to(live.customer, {"type": "flow", "session_id": live.id,
                                                  "flow": {**public, "alerts": []}})

    async def _tell_supervisors(self, live: LiveSession, message: dict[str, Any]) -> None:
        for conn in list(self.branch.connections.values()):
            if conn.role is Role.SUPERVISOR:
                await self.branch.send_to(conn.username, {
                    **message, "teller": live.teller, "customer": live.customer_name,
                    "service": live.service})


_PUTTING_THROUGH = {"en": "Of course. I am putting you through to a teller now, with "
                          "everything we have done so far.",
                    "zh": "好的，正在为您转接人工柜员，已办理的内容会一并转交。"}
_REPEAT_OPTION = {"en": "Sorry, which option was that? Please say a letter, for example "
                         "option B.", "zh": "抱歉，请问您选哪一项？请说出字母，例如选B。"}


def _questions() -> dict[str, list[str]]:

    return {q.id: [o.id for o in q.options] for q in load_questionnaire().questions}


def _next_question(run: FlowRun) -> str | None:
    return next((q for q in _questions() if q not in run.answers), None)


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes (stored as UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _clause_parts(clause: str) -> list[str]:
    """A clause and, when it has commas, its parts: a reader may pause at each comma."""
    parts = [p.strip() for p in clause.replace("，", ",").split(",")]
    return [clause, *(p for p in parts if len(p.split()) >= 3 and p != clause)]


def _mask(number: str) -> str:
    text = "".join(c for c in number if c.isalnum())[:18]
    return text[:6] + "*" * max(0, len(text) - 10) + text[-4:] if len(text) > 10 else "*" * 6


def _png_from_data_url(image: str) -> bytes:
    prefix = "data:image/png;base64,"
    if not isinstance(image, str) or not image.startswith(prefix):
        raise DomainError("the signature must be a PNG data URL")
    try:
        png = base64.b64decode(image[len(prefix):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DomainError("the signature image is not valid base64") from exc
    if len(png) > MAX_SIGNATURE_BYTES:
        raise DomainError(f"the signature image is larger than {MAX_SIGNATURE_BYTES} bytes")
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise DomainError("the signature image is not a PNG")
    return png


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool, list, dict,
                                                             type(None)))}


def _asks_for_person(text: str, phrase: str | None, language: str) -> bool:
    """Whether the customer's words hold one of ``PERSON_PHRASES`` (or the recogniser took
    them for one): "我要转人工", "can I talk to a person please"."""
    phrases = PERSON_PHRASES.get(language, PERSON_PHRASES["en"])
    if phrase in phrases:
        return True
    said = words_of(text)
    for wanted in map(words_of, phrases):
        if any(said[i:i + len(wanted)] == wanted for i in range(len(said) - len(wanted) + 1)):
            return True
    return False
