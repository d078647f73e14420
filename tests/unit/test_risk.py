"""Risk assessment: questionnaire file, scoring, levels, attempts, suitability, voice answers."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbank.domain.flows import FLOWS_DIR, load_flow
from vbank.domain.products import ProductFileError, load_products, parse_products
from vbank.domain.risk import (
    IncompleteAnswers,
    ProductRisk,
    QuestionnaireError,
    RiskLevel,
    TooManyAttempts,
    UnknownOption,
    UnknownQuestion,
    add_months,
    check_attempts,
    suitability,
)
from vbank.domain.risk_answers import answer_phrases, option_from_speech
from vbank.domain.risk_questionnaire import load_questionnaire, parse_questionnaire

NOW = datetime(2025, 3, 10, 15, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
Q = load_questionnaire()


def answers(choice: str | list[str]) -> dict[str, str]:
    """Every question answered with one letter ("last": each question's last option)."""
    picks = choice if isinstance(choice, list) else [choice] * len(Q.questions)
    return {q.id: q.options[-1].id if pick == "last" else pick
            for q, pick in zip(Q.questions, picks, strict=True)}


# --- the questionnaire file ---------------------------------------------------------------

def test_the_flow_file_has_about_ten_questions_in_both_languages() -> None:
    assert 8 <= len(Q.questions) <= 12
    assert Q.valid_months == 12
    for q in Q.questions:
        assert q.text.en.endswith("?") and q.text.zh.endswith("？")
        assert [o.id for o in q.options] == list("ABCD"[:len(q.options)])
        assert all(o.text.en and o.text.zh for o in q.options)


def test_the_intro_says_how_many_questions_there_are() -> None:
    flow = load_flow(FLOWS_DIR / "risk_assessment.yaml")
    assert [s.id for s in flow.steps] == ["questionnaire", "result", "suitability", "sealed"]
    assert "ten questions" in flow.step("questionnaire").say.en and len(Q.questions) == 10
    assert "{level}" in flow.step("result").say.en and "{level}" in flow.step("result").say.zh
    assert [d.id for d in flow.step("suitability").disclosures] == ["product_risk"]


def test_nothing_the_bank_says_here_is_a_forbidden_promise() -> None:
    flow = load_flow(FLOWS_DIR / "risk_assessment.yaml")
    texts: dict[str, list[str]] = {"en": [], "zh": []}
    for step in flow.steps:
        for lang in texts:
            texts[lang] += [step.say.get(lang)] + [d.text.get(lang) for d in step.disclosures]
    for q in Q.questions:
        for lang in texts:
            texts[lang] += [q.text.get(lang)] + [o.text.get(lang) for o in q.options]
    for p in load_products().values():
        for lang in texts:
            texts[lang] += [p.name.get(lang), p.description.get(lang),
                            p.expected_return.get(lang)]
    for lang, phrases in flow.forbidden.items():
        for text in texts[lang]:
            assert not [f for f in phrases if f.lower() in text.lower()], text


def test_option_texts_have_no_digits_so_a_recogniser_can_hear_them() -> None:
    for q in Q.questions:
        for o in q.options:
            assert not any(c.isdigit() for c in o.text.en + o.text.zh), o.text


# --- scoring ------------------------------------------------------------------------------

def test_all_a_gives_c1_and_all_last_gives_c5() -> None:
    low = Q.score(answers("A"), NOW)
    high = Q.score(answers("last"), NOW)
    assert (low.level, low.score) == (RiskLevel.C1, Q.lowest_score)
    assert (high.level, high.score) == (RiskLevel.C5, Q.highest_score)


def test_middle_answers_give_middle_levels() -> None:
    assert Q.score(answers("B"), NOW).level is RiskLevel.C2
    assert Q.score(answers(["B", "C"] * 5), NOW).level is RiskLevel.C3
    assert Q.score(answers("C"), NOW).level is RiskLevel.C4


def test_levels_follow_the_thresholds() -> None:
    assert Q.thresholds == (0, 19, 26, 34, 42)
    assert [Q.level_for(s) for s in (12, 18, 19, 25, 26, 33, 34, 41, 42, 48)] == [
        RiskLevel.C1, RiskLevel.C1, RiskLevel.C2, RiskLevel.C2, RiskLevel.C3, RiskLevel.C3,
        RiskLevel.C4, RiskLevel.C4, RiskLevel.C5, RiskLevel.C5]


def test_assessment_is_valid_twelve_months_and_keeps_the_answers() -> None:
    result = Q.score({k: v.lower() for k, v in answers("B").items()}, NOW)
    assert result.valid_until == NOW.replace(year=2026)
    assert result.answers == answers("B")


def test_add_months_keeps_the_day_or_takes_the_last_of_the_month() -> None:
    assert add_months(datetime(2024, 2, 29, 9, tzinfo=UTC), 12) == datetime(2025, 2, 28, 9,
                                                                            tzinfo=UTC)
    assert add_months(datetime(2025, 8, 31, tzinfo=UTC), 6) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2025, 12, 5, tzinfo=UTC), 1) == datetime(2026, 1, 5, tzinfo=UTC)


answer_lists = st.lists(st.integers(0, 3), min_size=len(Q.questions), max_size=len(Q.questions))


@given(answer_lists, st.integers(0, len(Q.questions) - 1), st.integers(1, 3))
def test_a_more_aggressive_answer_never_lowers_the_level(picks: list[int], which: int,
                                                        step: int) -> None:
    before = {q.id: q.options[min(i, len(q.options) - 1)].id
              for q, i in zip(Q.questions, picks, strict=True)}
    question = Q.questions[which]
    now_at = [o.id for o in question.options].index(before[question.id])
    after = dict(before, **{question.id: question.options[
        min(now_at + step, len(question.options) - 1)].id})
    a, b = Q.score(before, NOW), Q.score(after, NOW)
    assert b.score >= a.score
    assert b.level.rank >= a.level.rank


def test_unknown_question_is_named() -> None:
    with pytest.raises(UnknownQuestion) as err:
        Q.score(answers("A") | {"q99": "A"}, NOW)
    assert str(err.value) == "unknown question q99" and err.value.question_id == "q99"


def test_unknown_option_is_named() -> None:
    with pytest.raises(UnknownOption) as err:
        Q.score(answers("A") | {"q2": "E"}, NOW)
    assert str(err.value) == "question q2 has no option E"
    assert (err.value.question_id, err.value.option_id) == ("q2", "E")


def test_missing_answers_are_named() -> None:
    partial = answers("A")
    del partial["q3"], partial["q10"]
    with pytest.raises(IncompleteAnswers) as err:
        Q.score(partial, NOW)
    assert str(err.value) == "no answer to questions q3, q10" and err.value.question_id == "q3"
    with pytest.raises(IncompleteAnswers, match=r"^no answer to question q1$"):
        Q.score({k: v for k, v in answers("A").items() if k != "q1"}, NOW)


# --- checking a questionnaire section -----------------------------------------------------

def small() -> dict[str, Any]:
    return {"valid_months": 12,
            "levels": [{"level": f"C{i}", "min_score": m}
                       for i, m in zip(range(1, 6), (0, 3, 4, 5, 6), strict=True)],
            "questions": [{"id": f"q{n}", "text": {"en": f"Question {n}?", "zh": f"问题{n}？"},
                           "options": [{"id": letter, "text": {"en": f"Answer {letter}",
                                                                "zh": f"答案{letter}"},
                                        "score": score}
                                       for letter, score in (("A", 1), ("B", 2), ("C", 3))]}
                          for n in (1, 2)]}


def test_a_small_questionnaire_parses() -> None:
    q = parse_questionnaire(small(), "test.yaml")
    assert (q.lowest_score, q.highest_score) == (2, 6)
    assert q.level_for(2) is RiskLevel.C1 and q.level_for(6) is RiskLevel.C5


def broken(change: Any) -> str:
    node = copy.deepcopy(small())
    change(node)
    with pytest.raises(QuestionnaireError) as err:
        parse_questionnaire(node, "test.yaml")
    return str(err.value)


def test_questionnaire_errors_name_the_source_and_the_problem() -> None:
    def set_(path: str, value: Any) -> Any:
        def change(node: Any) -> None:
            *parents, last = path.split("/")
            for key in parents:
                node = node[int(key) if key.isdigit() else key]
            node[int(last) if last.isdigit() else last] = value
        return change

    assert broken(set_("levels/1/min_score", 1)) == (
        "test.yaml: questionnaire.levels: answering A to every question scores 2, which is "
        "C2; it must be C1")
    assert broken(set_("levels/4/min_score", 7)) == (
        "test.yaml: questionnaire.levels: answering the last option to every question scores "
        "6, which is C4; it must be C5")
    assert broken(set_("levels/2/min_score", 3)) == (
        "test.yaml: questionnaire.levels[2].min_score must be above 3 (C2's)")
    assert broken(set_("levels/0/level", "C2")) == (
        "test.yaml: questionnaire.levels[0].level must be C1: levels go C1 to C5")
    assert broken(set_("questions/0/options/1/id", "C")) == (
        "test.yaml: question q1: option 2 must have the id B (options go A, B, C... in order)")
    assert broken(set_("questions/1/options/2/score", 1)) == (
        "test.yaml: question q2 option C: score 1 is below option B's 2; options go from the "
        "most conservative to the most aggressive")
    assert broken(set_("questions/0/text", {"en": "Only English?"})) == (
        "test.yaml: question q1.text must give en and zh")
    assert broken(set_("questions/1/id", "q1")) == "test.yaml: question q1 appears twice"
    assert broken(set_("valid_months", 0)) == (
        "test.yaml: questionnaire.valid_months must be a whole number of months from 1 to 60")
    assert broken(set_("questions/0/options/1/text/en", "answer a")) == (
        "test.yaml: question q1 option B: the same en text as another option")
    assert broken(lambda n: n.pop("levels")) == "test.yaml: questionnaire needs levels"
    assert broken(set_("questions/0/hint", "x")) == (
        "test.yaml: questionnaire.questions[0]: unknown key 'hint'")


def test_errors_in_the_flow_file_name_its_line(tmp_path: Path) -> None:
    text = (FLOWS_DIR / "risk_assessment.yaml").read_text(encoding="utf-8")
    path = tmp_path / "risk_assessment.yaml"
    path.write_text(text.replace("score: 8}", "score: 7}", 1), encoding="utf-8")
    assert load_questionnaire(path).highest_score == Q.highest_score - 1
    path = tmp_path / "sub" / "risk_assessment.yaml"
    path.parent.mkdir()
    path.write_text(text.replace('{id: B, text: {en: "Sell some of it"',
                                 '{id: X, text: {en: "Sell some of it"'), encoding="utf-8")
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "id: X" in t)
    with pytest.raises(QuestionnaireError) as err:
        load_questionnaire(path)
    assert str(err.value) == (f"{path}:{line}: question q10: option 2 must have the id B "
                              "(options go A, B, C... in order)")


# --- attempts per day ---------------------------------------------------------------------

def test_three_attempts_a_day_then_refused_until_midnight() -> None:
    earlier = [NOW - timedelta(hours=h) for h in (1, 2)]
    check_attempts(earlier, NOW, 3)
    with pytest.raises(TooManyAttempts) as err:
        check_attempts([*earlier, NOW - timedelta(minutes=5)], NOW, 3)
    assert str(err.value) == "at most 3 risk assessments a day; try again tomorrow"
    assert err.value.retry_at == datetime(2025, 3, 11, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_yesterdays_attempts_do_not_count() -> None:
    check_attempts([NOW - timedelta(days=1)] * 5 + [NOW - timedelta(hours=15, minutes=31)],
                   NOW, 3)


def test_the_day_is_the_branchs_local_day_and_naive_times_are_utc() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    now = datetime(2025, 3, 11, 0, 10, tzinfo=shanghai)  # 16:10 UTC on the 10th
    late_yesterday = datetime(2025, 3, 10, 15, 50)  # naive UTC: 23:50 in Shanghai, the 10th
    check_attempts([late_yesterday] * 3, now, 3)
    with pytest.raises(TooManyAttempts):
        check_attempts([datetime(2025, 3, 10, 16, 5)] * 3, now, 3)  # 00:05 the 11th
    with pytest.raises(TooManyAttempts, match=r"^at most 1 risk assessment a day"):
        check_attempts([now.astimezone(UTC)], now, 1)


# --- suitability --------------------------------------------------------------------------

@pytest.mark.parametrize("level", list(RiskLevel))
@pytest.mark.parametrize("risk", list(ProductRisk))
def test_suitability_table(level: RiskLevel, risk: ProductRisk) -> None:
    s = suitability(level, risk)
    if risk.rank <= level.rank:
        assert (s.suitable, s.needs_acknowledgement, s.allowed) == (True, False, True)
    elif level is RiskLevel.C1:
        assert (s.suitable, s.needs_acknowledgement, s.allowed) == (False, False, False)
    else:
        assert (s.suitable, s.needs_acknowledgement, s.allowed) == (False, True, True)


def test_suitability_reasons() -> None:
    assert suitability(RiskLevel.C3, ProductRisk.R2).reason == (
        "an R2 product is within your C3 risk level")
    assert suitability(RiskLevel.C2, ProductRisk.R4).reason == (
        "an R4 product is above your C2 risk level: buying it needs your explicit "
        "acknowledgement of the risk")
    assert suitability(RiskLevel.C1, ProductRisk.R2).reason == (
        "a C1 (conservative) customer cannot buy an R2 product: only R1 products are allowed")


def test_c1_never_above_r1() -> None:
    assert suitability(RiskLevel.C1, ProductRisk.R1).suitable
    for risk in (ProductRisk.R2, ProductRisk.R3, ProductRisk.R4, ProductRisk.R5):
        assert not suitability(RiskLevel.C1, risk).allowed


@pytest.mark.parametrize("risk", list(ProductRisk))
def test_no_valid_assessment_is_never_allowed(risk: ProductRisk) -> None:
    s = suitability(None, risk)
    assert not (s.suitable or s.needs_acknowledgement or s.allowed)
    assert "take the risk assessment" in s.reason


def test_levels_are_described_in_both_languages() -> None:
    assert RiskLevel.C3.describe("en") == "C3 (balanced)"
    assert RiskLevel.C1.describe("zh") == "C1（保守型）"
    assert ProductRisk.R4.describe("en") == "R4 (medium-high risk)"


# --- spoken answers -----------------------------------------------------------------------

Q10 = Q.question("q10")  # Sell everything / Sell some of it / Hold and wait / Buy more


@pytest.mark.parametrize(("said", "option"), [
    ("B", "B"), ("b", "B"), ("option B", "B"), ("Option b.", "B"), ("answer c", "C"),
    ("the second one", "B"), ("second", "B"), ("The second one, please.", "B"),
    ("the last one", "D"), ("last", "D"), ("the first one", "A"), ("a", "A"),
    ("I'll take a", "A"), ("option two", "B"), ("number three", "C"), ("bee", "B"),
    ("it will be c", "C"), ("second to last", "C"), ("sell everything", "A"),
    ("I would sell everything", "A"), ("hold and wait", "C"), ("buy more", "D"),
    ("Sell some of it", "B"), ("everything", "A"),
    ("选B", "B"), ("我选b", "B"), ("第二个", "B"), ("第2个", "B"), ("最后一个", "D"),
    ("倒数第二个", "C"), ("全部卖出", "A"), ("我会继续持有", "C"),
])
def test_spoken_answers_are_understood(said: str, option: str) -> None:
    assert option_from_speech(Q10, said) == option


@pytest.mark.parametrize("said", [
    "", "hmm", "give me a second", "I don't know", "sell", "option E", "the fifth one",
    "b or c", "the second one, no, the last one", "see you later", "what", "五", "卖出",
    "option b, sell everything",
])
def test_garbage_or_ambiguous_answers_are_not_understood(said: str) -> None:
    assert option_from_speech(Q10, said) is None


def test_an_option_named_inside_a_longer_one_is_the_longer_one() -> None:
    q7 = Q.question("q7")  # "More than five years" vs "Three to five years"
    assert option_from_speech(q7, "more than five years") == "D"
    assert option_from_speech(q7, "three to five years") == "C"
    assert option_from_speech(q7, "five years") is None


@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_phrase_of_the_grammar_names_its_option(language: str) -> None:
    for q in Q.questions:
        phrases = answer_phrases(q, language)
        assert len(phrases) == len(set(phrases))
        for i, option in enumerate(q.options):
            own = [option.text.zh if language == "zh" else
                   " ".join(re.findall(r"[a-z0-9']+", option.text.en.lower()))]
            if language == "zh":
                own += [f"选{option.id}", f"第{'一二三四五六七八'[i]}个"]
            else:
                own += [option.id.lower(), f"option {option.id.lower()}"]
            for phrase in own:
                assert phrase in phrases
        for phrase in phrases:
            option_id = option_from_speech(q, phrase)
            assert option_id is not None, (q.id, phrase)
        named = {p: option_from_speech(q, p) for p in phrases}
        assert named[answer_phrases(q, language)[0]] == "A"
        last = "最后一个" if language == "zh" else "the last one"
        assert named[last] == q.options[-1].id


def test_grammar_phrases_name_the_right_option() -> None:
    phrases = answer_phrases(Q10)
    assert phrases[:6] == ["a", "option a", "answer a", "first", "the first one",
                           "sell everything"]
    assert {option_from_speech(Q10, p) for p in phrases[6:12]} == {"B"}
    assert answer_phrases(Q10, "zh")[:5] == ["选A", "A", "第一个", "第一项", "全部卖出"]


# --- products -----------------------------------------------------------------------------

def test_demo_products_cover_r1_to_r5() -> None:
    products = load_products()
    assert sorted(p.risk for p in products.values()) == list(ProductRisk)
    assert all(p.name.zh and p.expected_return.en for p in products.values())
    assert products["daily_cash"].risk is ProductRisk.R1


@pytest.mark.parametrize(("node", "message"), [
    ({}, "p.yaml: must have exactly one key, products"),
    ({"products": []}, "p.yaml: products must be a non-empty list"),
    ({"products": [{"id": "x"}]}, "p.yaml: products[0] (x) needs description"),
    ({"products": [{"id": "x", "name": {"en": "X", "zh": "X"}, "risk": "R6",
                    "description": {"en": "d", "zh": "d"},
                    "expected_return": {"en": "r", "zh": "r"}}]},
     "p.yaml: products[0] (x): risk must be one of R1, R2, R3, R4, R5"),
    ({"products": [{"id": "x", "name": {"en": "X"}, "risk": "R1",
                    "description": {"en": "d", "zh": "d"},
                    "expected_return": {"en": "r", "zh": "r"}}]},
     "p.yaml: products[0] (x): name must give en and zh"),
])
def test_product_file_errors(node: Any, message: str) -> None:
    with pytest.raises(ProductFileError) as err:
        parse_products(node, "p.yaml")
    assert str(err.value) == message


def test_products_are_read_only() -> None:
    with pytest.raises(TypeError):
        load_products()["new"] = load_products()["daily_cash"]  # type: ignore[index]
