"""Flow files and the flow state machine: signing and QC without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbank.domain.flowrun import FlowError, FlowRun
from vbank.domain.flows import FlowFileError, load_flow, load_flows
from vbank.domain.quality import forbidden_in, reads_in_full

LOAN = load_flows()["loan_signing"]
CLAUSES = [d.text.en for d in LOAN.disclosures]


def kinds(events: list) -> list[str]:
    return [e.kind for e in events]


def test_shipped_flows_load_with_the_fixed_step_ids() -> None:
    flows = load_flows()
    assert [s.id for s in flows["loan_signing"].steps] == [
        "identity", "disclosure", "consent", "signature", "sealed"]
    assert all(d.text.zh for d in LOAN.disclosures)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("flow: bad_flow\n", 1, "must be in a file named bad_flow.yaml"),
    ("flow: broken\nservice: loan_signing\ntitle: {en: a, zh: b}\nsteps:\n"
     "  - id: identity\n    say: {en: hello}\n  - id: sealed\n    say: {en: a, zh: b}\n",
     6, "identity.say has no zh text"),
    ("flow: broken\nservice: nope\n", 2, "unknown service 'nope'"),
    ("flow: broken\nservice: loan_signing\ntitle: {en: a, zh: b}\nsteps:\n"
     "  - id: identity\n    say: {en: a, zh: b}\n    colour: red\n", 7, "unknown key 'colour'"),
    ("flow: broken\nservice: loan_signing\ntitle: {en: a, zh: b}\nsteps:\n"
     "  - id: disclosure\n    say: {en: a, zh: b}\n  - id: sealed\n    say: {en: a, zh: b}\n",
     5, "must list its disclosures"),
])
def test_a_bad_flow_file_names_its_line(tmp_path: Path, text: str, line: int,
                                        message: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(FlowFileError) as caught:
        load_flow(path)
    assert caught.value.line == line and message in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}:")


def ready_for_disclosure(mode: str) -> FlowRun:
    run = FlowRun(LOAN, mode)
    assert kinds(run.start()) == ["step"]
    run.show_id("Li Wei", "110105********002X", True, "li  wei", at=1.0)
    events = run.face_seen(1, "recordings/s/snapshot-1.jpg", at=2.0)
    if mode == "teller":
        assert run.step.id == "identity"  # a person must confirm what the camera shows
        events = run.verify_identity("wang", at=3.0)
    assert "identity_verified" in kinds(events)
    assert run.step.id == "disclosure"
    return run


def test_digital_human_signing_runs_from_identity_to_sealed() -> None:
    run = ready_for_disclosure("digital_human")
    for n, clause in enumerate(CLAUSES):
        events = run.bank_said("digital_human", clause, at=10.0 + n)
        assert "disclosure_marked" in kinds(events)
    assert run.step.id == "consent" and not run.missing_disclosures
    assert run.customer_said("I'd rather think", None, at=20.0) == []
    events = run.customer_said("i confirm", "I confirm", at=21.0)
    assert kinds(events)[:2] == ["consent", "step"] and run.consent["at"] == 21.0
    run.push_document("personal-loan-contract", "ab" * 32)
    with pytest.raises(FlowError, match="not the contract"):
        run.sign("Li Wei", "cd" * 32, "Li Wei", "sig.png", at=22.0)
    with pytest.raises(FlowError, match="name does not match"):
        run.sign("Zhang San", "ab" * 32, "Li Wei", "sig.png", at=22.0)
    events = run.sign("Li Wei", "ab" * 32, "Li Wei", "sig.png", at=23.0)
    assert kinds(events) == ["contract_signed", "step", "complete"] and run.complete


def test_teller_cannot_verify_a_wrong_id_or_no_face() -> None:
    run = FlowRun(LOAN, "teller")
    run.start()
    with pytest.raises(FlowError, match="not shown a valid ID"):
        run.verify_identity("wang", at=1.0)
    run.show_id("Li Wei", "1101**", False, "Li Wei", problem="check digit is wrong", at=1.0)
    with pytest.raises(FlowError, match="not shown a valid ID"):
        run.verify_identity("wang", at=1.0)
    run.show_id("Li Wei", "1101**", True, "Li Wei", at=2.0)
    with pytest.raises(FlowError, match="no face"):
        run.verify_identity("wang", at=2.0)
    run.face_seen(0, "s.jpg", at=3.0)
    with pytest.raises(FlowError, match="no face"):
        run.verify_identity("wang", at=3.0)


def test_consent_said_before_the_terms_are_read_is_not_taken() -> None:
    """A browser walkthrough found "I confirm", said a second after the identity check,
    taken as consent at the key-terms step, and the unread terms shown as done."""
    for mode in ("teller", "digital_human"):
        run = ready_for_disclosure(mode)
        run.bank_said("wang", CLAUSES[0], at=5.0)
        events = run.customer_said("I confirm", "I confirm", at=6.0)
        assert kinds(events) == ["consent_early"] and events[0].data["step"] == "disclosure"
        assert run.consent is None and run.step.id == "disclosure" and not run.alerts


def test_a_skipped_clause_stays_unread_until_the_teller_goes_back_and_reads_it() -> None:
    run = ready_for_disclosure("teller")
    for clause in CLAUSES[:2] + CLAUSES[3:]:
        run.bank_said("wang", clause, at=5.0)
    assert run.step.id == "disclosure"
    with pytest.raises(FlowError, match="only at the consent step"):
        run.back("wang")
    events = run.advance("wang")  # the teller moves on: the clause is flagged, not done
    assert [e.data for e in events if e.kind == "qc_alert"] == [
        {"kind": "missing_disclosure", "step": "disclosure", "at": 5.0,
         "disclosure": "late_payment"}]
    assert run.step.id == "consent" and run.incomplete == ["disclosure"]
    public = run.public()
    assert public["incomplete"] == ["disclosure"]
    assert [u["id"] for u in public["unread"]] == ["late_payment"]
    events = run.back("wang")
    assert kinds(events)[:2] == ["back", "step"] and run.step.id == "disclosure"
    assert run.customer_said("I confirm", "I confirm", at=7.0)[0].kind == "consent_early"
    events = run.bank_said("wang", CLAUSES[2], at=8.0)  # read now: back to consent
    assert "disclosure_marked" in kinds(events) and run.step.id == "consent"
    assert run.incomplete == [] and run.missing_disclosures == []
    assert run.alerts[0]["disclosure"] == "late_payment"  # the history stays
    with pytest.raises(FlowError, match="nothing to go back to"):
        run.back("wang")
    events = run.customer_said("I confirm", "I confirm", at=9.0)
    assert kinds(events)[:2] == ["consent", "step"] and run.step.id == "signature"
    with pytest.raises(FlowError, match="only at the consent step"):
        run.back("wang")


def test_consent_after_a_skip_keeps_the_skipped_clause_unread() -> None:
    run = ready_for_disclosure("teller")
    run.advance("wang")
    run.customer_said("I confirm", "I confirm", at=9.0)
    assert run.consent is not None and run.step.id == "signature"
    assert run.incomplete == ["disclosure"] and len(run.missing_disclosures) == 4
    assert run.public()["incomplete"] == ["disclosure"]


def test_a_teller_promising_a_guaranteed_return_raises_an_alert() -> None:
    run = ready_for_disclosure("teller")
    events = run.bank_said("wang", "With this plan you get a guaranteed return, no risk.", 7.0)
    phrases = sorted(e.data["phrase"] for e in events if e.kind == "qc_alert")
    assert phrases == ["guaranteed return", "no risk"]
    assert not [e for e in run.bank_said("wang", "Returns are never guaranteed.", 8.0)
                if e.kind == "qc_alert"]
    # a keyphrase hit counts when the transcript of the same speech bears it out
    heard = run.bank_said("wang", "it is a risk three plan", 9.0, frozenset({"risk free"}))
    assert [e.data["phrase"] for e in heard if e.kind == "qc_alert"] == ["risk free"]
    misheard = run.bank_said("wang", "the annual interest rate of the slowness", 9.5,
                             frozenset({"risk free"}))
    assert not [e for e in misheard if e.kind == "qc_alert"]


def test_a_misheard_clause_still_counts_but_half_a_clause_does_not() -> None:
    clause = CLAUSES[0]
    words = clause.split()
    misheard = " ".join(["the", "and", *words[2:]])
    assert reads_in_full(misheard, clause)
    assert not reads_in_full(" ".join(words[: len(words) // 2]), clause)
    assert forbidden_in("Guaranteed returns, madam!", ["guaranteed return"]) == [
        "guaranteed return"]
    assert forbidden_in("returns are not guaranteed", ["guaranteed return"]) == []
    assert forbidden_in("我们这个产品保本", ["保本"]) == ["保本"]


def test_state_restores_at_the_last_confirmed_step() -> None:
    run = ready_for_disclosure("teller")
    run.bank_said("wang", CLAUSES[0], at=5.0)
    again = FlowRun.restore(LOAN, run.state())
    assert again.step.id == "disclosure" and again.identity["verified_by"] == "wang"
    assert list(again.marked) == ["interest_rate"]
    assert kinds(again.start()) == ["step"]


def test_risk_flow_from_questionnaire_to_an_acknowledged_mismatch() -> None:
    risk = load_flows()["risk_assessment"]
    run = FlowRun(risk, "digital_human", labels={"balanced_mixed": "Balanced Mixed Fund"})
    run.start()
    questions = {"q1": ["A", "B"], "q2": ["A", "B"]}
    assert kinds(run.answer("q1", "B", 1.0, questions)) == ["answer", "ask"]
    with pytest.raises(FlowError, match="unknown option 'E'"):
        run.answer("q2", "E", 1.5, questions)
    assert kinds(run.answer("q2", "A", 2.0, questions))[-1] == "questionnaire_complete"
    events = run.assessed("C2", 21)
    says = [e.data["say"] for e in events if e.kind == "step"]
    assert "Your risk level is C2" in says[0] and "Balanced Mixed Fund" in says[1]
    assert run.step.id == "suitability"
    run.checked_suitability("balanced_mixed", False, True, True, "above your level")
    with pytest.raises(FlowError, match="in words"):
        run.acknowledge("ok", 3.0)
    run.acknowledge("I understand the risk and accept it", 3.0)
    assert run.step.id == "suitability"  # the product's risk clause is still to be read
    clause = risk.step("suitability").disclosures[0].text.en
    assert kinds(run.bank_said("digital_human", clause, 4.0))[-1] == "complete"


def test_a_c1_customer_is_never_offered_an_acknowledgement() -> None:
    risk = load_flows()["risk_assessment"]
    run = FlowRun(risk, "teller")
    run.start()
    run.answer("q1", "A", 1.0, {"q1": ["A", "B"]})
    run.assessed("C1", 10)
    run.checked_suitability("balanced_mixed", False, False, False, "C1 cannot buy R3")
    with pytest.raises(FlowError, match="nothing to acknowledge"):
        run.acknowledge("I accept the risk anyway", 2.0)
    assert run.advance("wang")[0].kind == "qc_alert"  # moving on unread is flagged
    assert run.complete


def test_a_clause_read_in_two_breaths_counts_once_both_parts_are_heard() -> None:
    run = ready_for_disclosure("teller")
    first, second = CLAUSES[0].split(", ")
    # the keyphrase search found the parts, the second one first in the set it reports
    run.bank_said("wang", "the annual interest rate of the slowness", 5.0, frozenset({first}))
    assert "interest_rate" not in run.marked  # half a clause is not a disclosure
    events = run.bank_said("wang", "fixed for the whole term", 6.0, frozenset({second}))
    assert [e.data["id"] for e in events if e.kind == "disclosure_marked"] == ["interest_rate"]
