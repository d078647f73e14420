"""One run of a business flow in a session: commands in, events out, no I/O and no clock.

The call's glue (``vbank.business``) feeds it what happened — an ID shown, a face seen, the
bank's side speaking, the customer's words, a click, a signature — with the time, and acts on
the events that come back: tell the participants, record them as evidence, have the digital
human say the next line. Its ``state()`` is saved after every change, so a session that
outlives its server resumes from the last confirmed step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vbank.domain import DomainError
from vbank.domain.flows import Flow, Step
from vbank.domain.quality import forbidden_in, reads_in_full, spot_confirmed, words_of

MODES = ("teller", "digital_human")
#: found clause parts are exact words: only a word or so may differ where they join (a
#: misheard transcript gets ``quality.DISCLOSURE_TOLERANCE``; neither may drop a part)
EXACT = 0.1


class FlowError(DomainError):
    """A command that does not fit the flow's current step."""


@dataclass(frozen=True, slots=True)
class FlowEvent:
    """Something the flow decided. ``kind`` is one of: ``step`` (entered a step; ``say``
    is its script), ``identity_checked``, ``identity_verified``, ``face``,
    ``disclosure_marked``, ``consent``, ``consent_refused``, ``consent_early`` (consent
    heard before the consent step: not taken), ``back`` (the teller went back to read a
    skipped clause), ``document``,
    ``contract_signed``, ``answer``, ``ask`` (the next question, to be read out),
    ``questionnaire_complete`` (the glue scores it and calls :meth:`FlowRun.assessed`),
    ``risk_assessed``, ``suitability``, ``acknowledgement``, ``qc_alert``, ``complete``."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class FlowRun:
    flow: Flow
    mode: str = "teller"
    language: str = "en"
    index: int = 0
    started: bool = False
    #: what the customer claimed and what was checked; the ID number only masked
    identity: dict[str, Any] = field(default_factory=dict)
    marked: dict[str, float] = field(default_factory=dict)  # disclosure id -> time read
    consent: dict[str, Any] | None = None
    documents: dict[str, str] = field(default_factory=dict)  # document id -> sha256
    signature: dict[str, Any] | None = None
    answers: dict[str, str] = field(default_factory=dict)
    level: str | None = None
    product: str | None = None
    suitability: dict[str, Any] | None = None
    acknowledgement: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: names to say for ids in scripts (a product's name for its id), in the run's language
    labels: dict[str, str] = field(default_factory=dict)
    #: the bank side's recent words, so a clause split over two utterances still counts
    _recent: list[str] = field(default_factory=list)
    _recent_free: list[str] = field(default_factory=list)
    #: time of the command being handled (stamps alerts raised while moving on)
    _now: float = 0.0
    #: the step (index) at which early consent was last told: once per visit of a step
    _early_at: int = -1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise FlowError(f"mode must be one of {', '.join(MODES)}")
        self.product = self.product or self.flow.product

    # ---------------------------------------------------------------- reading
    @property
    def step(self) -> Step:
        return self.flow.steps[self.index]

    @property
    def complete(self) -> bool:
        return self.step.kind == "sealed"

    @property
    def missing_disclosures(self) -> list[str]:
        """Disclosures of steps already passed (or current) that were never read in full."""
        return [d.id for s in self.flow.steps[:self.index + 1] for d in s.disclosures
                if d.id not in self.marked]

    @property
    def incomplete(self) -> list[str]:
        """Steps already passed with a clause not read in full (the teller moved on): never
        shown as done, on any screen, the receipt or the evidence."""
        return [s.id for s in self.flow.steps[:self.index]
                if any(d.id not in self.marked for d in s.disclosures)]

    def public(self) -> dict[str, Any]:
        """What the console and the customer page show."""
        step = self.step
        return {"flow": self.flow.id, "step": step.id, "kind": step.kind, "mode": self.mode,
                "language": self.language, "say": self._script(step),
                "steps": [s.id for s in self.flow.steps], "incomplete": self.incomplete,
                "disclosures": [{"id": d.id, "text": d.text.get(self.language),
                                 "read": d.id in self.marked} for d in step.disclosures],
                "unread": [{"id": d.id, "text": d.text.get(self.language), "step": s.id}
                           for s in self.flow.steps[:self.index] for d in s.disclosures
                           if d.id not in self.marked],
                "identity": self.identity, "consent": self.consent,
                "signature": self.signature, "answers": self.answers, "level": self.level,
                "product": self.product, "suitability": self.suitability,
                "documents": self.documents, "alerts": self.alerts}

    # ------------------------------------------------------------- persisting
    def state(self) -> dict[str, Any]:
        return {"flow": self.flow.id, "mode": self.mode, "language": self.language,
                "step": self.step.id, "identity": self.identity, "marked": self.marked,
                "consent": self.consent, "documents": self.documents,
                "signature": self.signature, "answers": self.answers, "level": self.level,
                "product": self.product, "suitability": self.suitability,
                "acknowledgement": self.acknowledgement, "alerts": self.alerts}

    @classmethod
    def restore(cls, flow: Flow, state: dict[str, Any], mode: str | None = None) -> FlowRun:
        """A run carried on from a saved state (a resumed or reconnected session)."""
        run = cls(flow, mode or state.get("mode", "teller"), state.get("language", "en"))
        run.index = flow.index(state.get("step", flow.steps[0].id))
        for name in ("identity", "marked", "documents", "answers", "alerts"):
            setattr(run, name, type(getattr(run, name))(state.get(name) or {}))
        for name in ("consent", "signature", "level", "suitability", "acknowledgement"):
            setattr(run, name, state.get(name))
        run.product = state.get("product") or run.product
        if run.step.kind == "questionnaire":  # unconfirmed answers are asked again
            run.answers = {}
        return run

    # --------------------------------------------------------------- commands
    def start(self) -> list[FlowEvent]:
        """Enter the current step (the first, or the one a resumed run stopped at)."""
        self.started = True
        return self._enter()

    def show_id(self, name: str, masked_id: str, valid: bool, registered_name: str,
                problem: str = "", at: float = 0.0) -> list[FlowEvent]:
        """The customer held up an ID card: name and ID number (checked by the caller)."""
        self._expect("identity", "show your ID")
        self._now = at
        name_ok = _same_name(name, registered_name)
        self.identity.update(name=name.strip(), id_number=masked_id, id_valid=valid,
                             name_matches=name_ok, at=at)
        if not valid:
            self.identity["problem"] = problem
        elif not name_ok:
            self.identity["problem"] = "the name does not match the customer's record"
        else:
            self.identity.pop("problem", None)
        return [FlowEvent("identity_checked", dict(self.identity)), *self._after_identity()]

    def face_seen(self, faces: int, snapshot: str, at: float) -> list[FlowEvent]:
        """A snapshot of the customer's video was taken; ``faces`` detected in it."""
        self._expect("identity", "take a snapshot")
        self._now = at
        self.identity.update(faces=faces, snapshot=snapshot, snapshot_at=at)
        return [FlowEvent("face", {"faces": faces, "snapshot": snapshot}),
                *self._after_identity()]

    def verify_identity(self, teller: str, at: float) -> list[FlowEvent]:
        """The teller confirms the person on camera is the person on the ID."""
        self._expect("identity", "verify identity")
        self._now = at
        if not self.identity.get("id_valid"):
            raise FlowError("the customer has not shown a valid ID yet")
        if not self.identity.get("faces"):
            raise FlowError("no face was seen in the customer's video yet")
        if not self.identity.get("name_matches"):
            raise FlowError("the name on the ID does not match the customer's record")
        self.identity.update(verified_by=teller, verified_at=at)
        return [FlowEvent("identity_verified", {"by": teller, "at": at}), *self._advance()]

    def bank_said(self, speaker: str, text: str, at: float,
                  spotted: frozenset[str] = frozenset()) -> list[FlowEvent]:
        """The teller or digital human said ``text`` (exact, or ASR of a teller);
        ``spotted`` holds phrases a keyword spotter found in the same speech."""
        self._now = at
        events: list[FlowEvent] = []
        phrases = self.flow.forbidden.get(self.language, ())
        spotted_promises = {p for p in spotted & set(phrases) if spot_confirmed(text, p)}
        for phrase in sorted(set(forbidden_in(text, phrases)) | spotted_promises):
            events.append(self._alert("forbidden_phrase", at, speaker=speaker, phrase=phrase,
                                      text=text))
        # Two views of the same speech, each kept over the last few utterances (a reader
        # pauses at commas): the clauses or parts a keyphrase search found, in reading
        # order, and the free transcript (words misheard, but nothing missed wholesale).
        script = " ".join(d.text.get(self.language) for s in self.flow.steps
                          for d in s.disclosures)
        found = sorted(spotted - set(phrases), key=lambda p: (script.find(p), p))
        self._recent = [*self._recent, *words_of(" ".join(found))][-120:]
        self._recent_free = [*self._recent_free, *words_of(text)][-120:]
        recent, recent_free = " ".join(self._recent), " ".join(self._recent_free)
        for disclosure in self.step.disclosures:
            clause = disclosure.text.get(self.language)
            if disclosure.id not in self.marked and (
                    clause in spotted or reads_in_full(recent, clause, EXACT)
                    or reads_in_full(recent_free, clause)):
                self.marked[disclosure.id] = at
                events.append(FlowEvent("disclosure_marked", {"id": disclosure.id,
                                                              "by": speaker, "at": at}))
        if self.step.kind == "disclosure" and all(
                d.id in self.marked for d in self.step.disclosures):
            events += self._advance()
        elif self.step.kind == "suitability":
            events += self._suitability_done()
        return events

    def customer_said(self, text: str, phrase: str | None, at: float) -> list[FlowEvent]:
        """The customer spoke; ``phrase`` is the expected phrase the recognizer snapped to."""
        self._now = at
        kind = self.step.kind
        if kind != "consent":
            if self._is_consent(text, phrase) and self._early_at != self.index and \
                    self.index < (self._consent_index() or 0):
                self._early_at = self.index
                # consent counts only once the terms were read (or skipped, flagged, by the
                # teller) and the customer is asked for it: said earlier, it is not taken
                return [FlowEvent("consent_early", {"heard": text, "at": at,
                                                    "step": self.step.id})]
            return []
        step = self.step
        if self._is_consent(text, phrase):
            self.consent = {"text": phrase or text, "heard": text, "at": at}
            return [FlowEvent("consent", dict(self.consent)), *self._advance()]
        refuse = step.refuse.get(self.language, ())
        if phrase in refuse or any(_same_words(text, r) for r in refuse):
            return [FlowEvent("consent_refused", {"heard": text, "at": at})]
        return []

    def push_document(self, document: str, sha256: str) -> list[FlowEvent]:
        self.documents[document] = sha256
        return [FlowEvent("document", {"id": document, "sha256": sha256})]

    def sign(self, name: str, document_sha256: str, registered_name: str, image: str,
             at: float) -> list[FlowEvent]:
        """The customer signed the pushed document (its SHA-256 binds the signature)."""
        self._expect("signature", "sign")
        self._now = at
        wanted = self.documents.get(self.flow.document or "")
        if wanted is None:
            raise FlowError("the contract has not been pushed to the customer yet")
        if document_sha256 != wanted:
            raise FlowError(f"the signature is for document {document_sha256[:12]}…, "
                            f"not the contract {wanted[:12]}…")
        if not _same_name(name, registered_name):
            raise FlowError("the signature's name does not match the customer's record")
        self.signature = {"name": name.strip(), "document_sha256": document_sha256,
                          "image": image, "at": at}
        return [FlowEvent("contract_signed", dict(self.signature)), *self._advance()]

    def advance(self, by: str) -> list[FlowEvent]:
        """The teller moves on from a step that waits for nobody but them (unread clauses
        are flagged as missing)."""
        if self.mode != "teller":
            raise FlowError("only a teller moves the flow on by hand")
        if self.step.kind == "suitability" and self._suitability_settled():
            return self._advance()
        if self.step.kind not in ("disclosure", "result"):
            raise FlowError(f"the step {self.step.id} moves on by itself when it is done")
        return self._advance()

    def back(self, by: str) -> list[FlowEvent]:
        """The teller goes back from the consent step to the first step with a clause they
        skipped, to read it; the flow comes back to consent once every clause is read."""
        if self.mode != "teller":
            raise FlowError("only a teller goes back to read a skipped clause")
        if not self.started or self.step.kind != "consent" or self.consent is not None:
            raise FlowError("the teller goes back to read a skipped clause only at the "
                            "consent step, before consent is given")
        skipped = self.incomplete
        if not skipped:
            raise FlowError("every clause has been read: there is nothing to go back to")
        self.index = self.flow.index(skipped[0])
        return [FlowEvent("back", {"by": by, "step": skipped[0]}), *self._enter()]

    def answer(self, question: str, option: str, at: float,
               questions: dict[str, list[str]]) -> list[FlowEvent]:
        """An answer to the questionnaire; ``questions`` maps ids to option ids in order."""
        self._expect("questionnaire", "answer")
        self._now = at
        if question not in questions:
            raise FlowError(f"unknown question {question!r}")
        if option not in questions[question]:
            raise FlowError(f"unknown option {option!r} for question {question}")
        self.answers[question] = option
        events = [FlowEvent("answer", {"question": question, "option": option, "at": at})]
        remaining = [q for q in questions if q not in self.answers]
        if remaining:
            return [*events, FlowEvent("ask", {"question": remaining[0]})]
        return [*events, FlowEvent("questionnaire_complete", {"answers": dict(self.answers)})]

    def assessed(self, level: str, score: int) -> list[FlowEvent]:
        """The glue scored and recorded the questionnaire."""
        self._expect("questionnaire", "record an assessment")
        self.level = level
        return [FlowEvent("risk_assessed", {"level": level, "score": score}), *self._advance()]

    def checked_suitability(self, product: str, suitable: bool, needs_acknowledgement: bool,
                            allowed: bool, reason: str) -> list[FlowEvent]:
        self._expect("suitability", "check suitability")
        self.product = product
        self.suitability = {"product": product, "suitable": suitable, "allowed": allowed,
                            "needs_acknowledgement": needs_acknowledgement, "reason": reason}
        return [FlowEvent("suitability", dict(self.suitability)), *self._suitability_done()]

    def acknowledge(self, text: str, at: float) -> list[FlowEvent]:
        self._expect("suitability", "acknowledge")
        self._now = at
        if not self.suitability or not self.suitability["needs_acknowledgement"]:
            raise FlowError("there is nothing to acknowledge")
        if not self.suitability["allowed"]:
            raise FlowError(self.suitability["reason"])
        if len(words_of(text)) < 3:
            raise FlowError("the acknowledgement must say in words that you accept the risk")
        self.acknowledgement = {"text": text.strip(), "product": self.product, "at": at}
        return [FlowEvent("acknowledgement", dict(self.acknowledgement)),
                *self._suitability_done()]

    # ---------------------------------------------------------------- helpers
    def _script(self, step: Step) -> str:
        """The step's script with the customer's level and product filled in."""
        return step.say.get(self.language).replace("{level}", self.level or "") \
            .replace("{product}", self.labels.get(self.product or "", self.product or ""))

    def _expect(self, kind: str, action: str) -> None:
        if not self.started:
            raise FlowError("the flow has not started")
        if self.step.kind != kind:
            raise FlowError(f"cannot {action} at the step {self.step.id}")

    def _suitability_settled(self) -> bool:
        verdict = self.suitability
        return verdict is not None and (verdict["suitable"] or not verdict["allowed"]
                                        or self.acknowledgement is not None)

    def _suitability_done(self) -> list[FlowEvent]:
        """Suitability ends once settled and its clauses were read out."""
        if self._suitability_settled() and all(d.id in self.marked
                                               for d in self.step.disclosures):
            return self._advance()
        return []

    def _after_identity(self) -> list[FlowEvent]:
        ready = (self.identity.get("id_valid") and self.identity.get("name_matches")
                 and self.identity.get("faces"))
        if ready and self.mode == "digital_human":
            self.identity.update(verified_by="digital_human")
            return [FlowEvent("identity_verified", {"by": "digital_human"}), *self._advance()]
        return []

    def _is_consent(self, text: str, phrase: str | None) -> bool:
        index = self._consent_index()
        expected = self.flow.steps[index].expect.get(self.language, ()) if index is not None \
            else ()
        return phrase in expected or any(_same_words(text, e) for e in expected)

    def _consent_index(self) -> int | None:
        return next((i for i, s in enumerate(self.flow.steps) if s.kind == "consent"), None)

    def _alert(self, kind: str, at: float, **data: Any) -> FlowEvent:
        alert = {"kind": kind, "step": self.step.id, "at": at, **data}
        self.alerts.append(alert)
        return FlowEvent("qc_alert", alert)

    def _advance(self) -> list[FlowEvent]:
        events: list[FlowEvent] = []
        if self.step.disclosures:
            for missing in [d.id for d in self.step.disclosures if d.id not in self.marked]:
                events.append(self._alert("missing_disclosure", self._now, disclosure=missing))
        if self.index + 1 < len(self.flow.steps):
            self.index += 1
            events += self._enter()
        return events

    def _enter(self) -> list[FlowEvent]:
        self._early_at = -1
        step = self.step
        events = [FlowEvent("step", {"step": step.id, "kind": step.kind,
                                     "say": self._script(step)})]
        if step.kind == "result" and self.level is not None:
            events += self._advance()
        elif step.kind == "sealed":
            events.append(FlowEvent("complete", {"missing": self.missing_disclosures}))
        return events


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _same_words(text: str, phrase: str) -> bool:
    return words_of(text) == words_of(phrase)
