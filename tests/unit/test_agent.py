"""The digital human's conversation rules, without audio."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbank.speech import SpeechError
from vbank.speech.agent import (
    Conversation,
    End,
    Faq,
    HandOver,
    Heard,
    PointsFacts,
    Say,
    Silence,
    StartService,
)

FAQ = Faq.load(Path(__file__).resolve().parents[2] / "scenes" / "faq.yaml")


def texts(actions: list[object]) -> list[str]:
    return [a.key for a in actions if isinstance(a, Say)]


def test_greets_then_answers_and_offers_more_help() -> None:
    c = Conversation(FAQ)
    assert texts(c.start()) == ["greeting"]
    assert texts(c.hear(Heard("when are you open", "opening_hours"))) == [
        "opening_hours", "anything_else"]


def test_two_misunderstandings_in_a_row_hand_over_to_a_person() -> None:
    c = Conversation(FAQ)
    c.start()
    assert texts(c.hear(Silence())) == ["repeat"]
    actions = c.hear(Heard("blah", None))
    assert texts(actions) == ["give_up"] and actions[-1] == HandOver("not_understood")
    assert c.hear(Heard("hello", "opening_hours")) == []  # nothing after the hand-over


def test_an_understood_turn_resets_the_misunderstanding_count() -> None:
    c = Conversation(FAQ)
    c.hear(Silence())
    c.hear(Heard("what are your fees", "fees"))
    assert texts(c.hear(Silence())) == ["repeat"]


def test_asking_for_a_person_hands_over_and_goodbye_ends() -> None:
    c = Conversation(FAQ)
    assert c.hear(Heard("a human please", "talk_to_person"))[-1] == HandOver("asked")
    c2 = Conversation(FAQ)
    assert c2.hear(Heard("bye", "goodbye"))[-1] == End()


def test_queue_status_uses_the_live_position_and_chinese_texts() -> None:
    c = Conversation(FAQ, language="zh", queue_position=3)
    assert "第3位" in c.hear(Heard("how long", "queue_status"))[0].text  # type: ignore[union-attr]
    assert "您好" in c.start()[0].text  # type: ignore[union-attr]


def test_a_broken_faq_file_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "faq.yaml"
    bad.write_text("intents: [1, 2]")
    with pytest.raises(SpeechError, match=r"faq\.yaml: not a valid FAQ file"):
        Faq.load(bad)


def test_asking_for_a_service_starts_it_after_saying_so_in_the_call_language() -> None:
    for language, service in (("en", "risk_assessment"), ("zh", "loan_signing"),
                              ("en", "account_opening")):
        c = Conversation(FAQ, language=language)
        c.start()
        actions = c.hear(Heard("...", service))
        assert actions[-1] == StartService(service)
        said = actions[0]
        assert isinstance(said, Say) and said.text == FAQ.answers[service][language]
        assert c.ended and c.hear(Heard("when are you open", "opening_hours")) == []


def test_say_again_repeats_the_last_answer_not_the_offer_of_more_help() -> None:
    c = Conversation(FAQ)
    c.start()
    c.hear(Heard("what are your fees", "fees"))
    again = c.hear(Heard("sorry what did you say", "say_again"))
    assert [a.key for a in again if isinstance(a, Say)] == ["fees"]
    assert texts(Conversation(FAQ).hear(Heard("pardon", "say_again"))) == ["greeting"]


def test_a_chinese_session_is_understood_by_the_chinese_and_the_english_examples() -> None:
    zh = FAQ.examples_in("zh")
    assert set(zh) == set(FAQ.examples)
    for intent, examples in FAQ.examples.items():
        assert set(examples) <= set(zh[intent])
        assert set(FAQ.examples_zh[intent]) <= set(zh[intent]) and FAQ.examples_zh[intent]


def test_an_faq_starting_an_unknown_service_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "faq.yaml"
    bad.write_text("intents:\n  mortgage:\n    examples: [a]\n    answer: {en: b}\n"
                   "    start: mortgage_signing\n")
    with pytest.raises(SpeechError, match="unknown service 'mortgage_signing'"):
        Faq.load(bad)


FACTS = PointsFacts(balance=420, tier="silver",
                    affordable=(({"en": "Folding umbrella", "zh": "折叠雨伞"}, 285),
                                ({"en": "Coffee voucher", "zh": "咖啡券"}, 76)),
                    cheapest=({"en": "Coffee voucher", "zh": "咖啡券"}, 76))


def test_points_answers_tell_the_balance_tier_and_what_it_buys() -> None:
    c = Conversation(FAQ, points=FACTS)
    balance = c.hear(Heard("how many points do I have", "my_points"))[0]
    assert isinstance(balance, Say) and "420 points" in balance.text and "silver" in balance.text
    items = c.hear(Heard("what can I get", "points_items"))[0]
    assert isinstance(items, Say) and items.text == (
        "With your points you can get Folding umbrella or Coffee voucher.")
    zh = Conversation(FAQ, language="zh", points=FACTS)
    assert "420积分" in zh.hear(Heard("积分", "my_points"))[0].text  # type: ignore[union-attr]
    assert "折叠雨伞、咖啡券" in zh.hear(Heard("兑换", "points_items"))[0].text  # type: ignore[union-attr]


def test_points_answers_when_nothing_is_affordable_or_nothing_is_known() -> None:
    poor = Conversation(FAQ, points=PointsFacts.from_dict(
        {"balance": 10, "tier": "standard", "affordable": [],
         "cheapest": [{"en": "Coffee voucher", "zh": "咖啡券"}, 80]}))
    said = poor.hear(Heard("what can I redeem", "points_items"))[0]
    assert isinstance(said, Say) and "Coffee voucher, needs 80 points" in said.text
    empty = Conversation(FAQ, points=PointsFacts(balance=10, tier="standard"))
    assert texts(empty.hear(Heard("what can I get", "points_items")))[0] == "points_mall_empty"
    unknown = Conversation(FAQ)  # the server could not tell: never a made-up number
    assert texts(unknown.hear(Heard("my points", "my_points"))) == ["points_unknown",
                                                                    "anything_else"]
