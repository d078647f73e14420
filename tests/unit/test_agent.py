"""The digital human's conversation rules, without audio."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbank.speech import SpeechError
from vbank.speech.agent import Conversation, End, Faq, HandOver, Heard, Say, Silence

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
