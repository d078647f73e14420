"""The call as the 3D customer sees it: who is on the screen, what was said, where the
business stands, and the commands the customer's keys and clicks make.

Pure, like the shelf: ``LiveHall`` feeds it the branch's messages (``paired``, ``caption``,
``flow``, ``document``, ``question``, ``ended``…) and the link's ``call_media``; the app asks
it what to show (``status``, ``caption_lines``, ``question_lines``) and for the messages to
send (``sign`` returns the ``sign`` message for the pushed contract, ``answer`` the click on
an option), so that a window, a test and the scenario runner all go through the same code.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from vbank.avatar.signature import signature_png

#: caption lines kept on the screen
CAPTION_LINES = 3
AGENTS = {"teller": "teller 柜员", "digital_human": "digital assistant 数字人"}


class CallProblem(Exception):
    """A command the call cannot take now (nothing to sign, no such option…)."""


@dataclass
class Question:
    id: str
    text: str
    options: list[tuple[str, str]]  # (id, text)
    index: int
    total: int


@dataclass
class CallView:
    """The customer's call, from pairing to the end."""

    session_id: str | None = None
    agent: str | None = None  # teller | digital_human while paired
    agent_name: str = ""
    media: str = ""  # the link's call_media state
    flow_kind: str | None = None  # identity, disclosure, consent, signature, questionnaire…
    flow: dict[str, Any] = field(default_factory=dict)
    document: dict[str, Any] | None = None  # the contract pushed for signing
    question: Question | None = None
    captions: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=CAPTION_LINES))
    problem: str = ""
    ended: str | None = None  # the outcome, once the call is over

    @property
    def paired(self) -> bool:
        return self.agent is not None

    # ------------------------------------------------------------------ taking messages in
    def paired_with(self, m: dict[str, Any]) -> None:
        peer = m["peer"] if isinstance(m.get("peer"), dict) else {}
        self.session_id = str(m.get("session_id"))
        self.agent = str(peer.get("role") or "teller")
        self.agent_name = str(peer.get("name") or "")
        self.ended = None
        self.problem = ""

    def resumed(self, session: dict[str, Any]) -> None:
        """A ``welcome`` finding the customer already in a call (after a reconnect)."""
        peer = session["peer"] if isinstance(session.get("peer"), dict) else {}
        self.paired_with({"session_id": session.get("session_id"), "peer": {
            "role": peer.get("role") or ("teller" if session.get("teller") else
                                         "digital_human"), "name": peer.get("name")}})

    def unpaired(self) -> None:
        """Back in the queue (the teller dropped or handed over)."""
        self.agent, self.agent_name = None, ""

    def end(self, outcome: str) -> None:
        self.agent, self.agent_name, self.ended = None, "", outcome
        self.flow_kind, self.question, self.document = None, None, None
        self.flow = {}

    def caption(self, speaker: str, text: str) -> None:
        if text:
            self.captions.append((speaker, text))

    def flow_state(self, flow: dict[str, Any]) -> None:
        self.flow = flow
        self.flow_kind = str(flow.get("kind")) if flow.get("kind") else None
        if self.flow_kind != "questionnaire":
            self.question = None

    def pushed(self, m: dict[str, Any]) -> None:
        self.document = {"id": m.get("id"), "title": m.get("title"), "sha256": m.get("sha256")}

    def asked(self, m: dict[str, Any]) -> None:
        q = m["question"] if isinstance(m.get("question"), dict) else {}
        options = [(str(o.get("id")), str(o.get("text") or ""))
                   for o in q.get("options") or [] if isinstance(o, dict)]
        self.question = Question(str(q.get("id")), str(q.get("text") or ""), options,
                                 int(m.get("index") or 0), int(m.get("total") or 0))

    @property
    def identity_pending(self) -> bool:
        """The identity step waits for the customer to hold up their ID card."""
        identity = self.flow.get("identity")
        return self.flow_kind == "identity" and not (isinstance(identity, dict) and
                                                      identity.get("at"))

    # ------------------------------------------------------------------ commands
    def id_number(self, typed: str) -> str:
        """The ID number as typed, without spaces, upper case (the check letter X)."""
        number = "".join(typed.split()).upper()
        if not number:
            raise CallProblem("type your ID number 请输入身份证号")
        if not self.paired:
            raise CallProblem("not in a call 当前不在通话中")
        return number

    def sign(self, name: str) -> dict[str, Any]:
        """The ``sign`` message for the pushed contract, with the typed name drawn as the
        signature's image."""
        name = name.strip()
        if not name:
            raise CallProblem("type your name to sign 请输入姓名")
        if self.document is None or not self.document.get("sha256"):
            raise CallProblem("there is no contract to sign yet 尚无待签合同")
        return {"type": "sign", "name": name, "document_sha256": self.document["sha256"],
                "image": signature_png(name)}

    def answer(self, option: str) -> dict[str, Any]:
        """The click on ``option`` of the open question."""
        q = self.question
        if q is None:
            raise CallProblem("there is no question to answer 当前没有问题")
        if option not in {o for o, _ in q.options}:
            raise CallProblem(f"question {q.id} has no option {option}")
        return {"type": "answer", "question": q.id, "option": option}

    # ------------------------------------------------------------------ words to show
    def status(self) -> str:
        if self.agent is None:
            return ""
        who = AGENTS.get(self.agent, self.agent)
        line = f"In a call with the {who}" + (f": {self.agent_name}" if self.agent_name else "")
        if self.media and self.media != "connected":
            line += f" · media {self.media}"
        if self.flow_kind:
            line += f" · {self.flow_kind}"
        return line

    def caption_lines(self) -> str:
        names = {"customer": "You 您"}
        return "\n".join(f"{names.get(s, AGENTS.get(s, s))}: {t}" for s, t in self.captions)

    def question_lines(self) -> str:
        q = self.question
        if q is None:
            return ""
        head = f"Q{q.index}/{q.total}  {q.text}" if q.total else q.text
        return "\n".join([head, *(f"  {o}. {t}" for o, t in q.options)])

