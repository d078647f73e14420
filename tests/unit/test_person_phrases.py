"""What counts, mid-flow, as a customer asking the digital human for a person."""

from __future__ import annotations

import pytest

from vbank.business import _asks_for_person


@pytest.mark.parametrize("text,phrase,language", [
    ("Actually, I want to talk to a person.", None, "en"),
    ("could I TALK TO A PERSON please", None, "en"),
    ("我要转人工", None, "zh"),
    ("轉人公", "转人工", "zh"),  # the phrase scored; the transcript is other characters
])
def test_asking_for_a_person_is_heard(text: str, phrase: str | None, language: str) -> None:
    assert _asks_for_person(text, phrase, language)


@pytest.mark.parametrize("text,phrase,language", [
    ("option B", "option b", "en"),
    ("a person of my age would choose the second one", None, "en"),
    ("第二个", "第二个", "zh"),
    ("人工智能基金", None, "zh"),
    ("", None, "en"),
])
def test_answers_and_other_words_are_not(text: str, phrase: str | None, language: str) -> None:
    assert not _asks_for_person(text, phrase, language)
