"""Mandarin answers by voice, with the packaged multilingual Whisper (base): risk questionnaire
options, consent and 转人工 said by a human voice (tests/fixtures/audio/zh), and speech that is
none of the step's answers, which must be rejected rather than guessed."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbank.speech.asr import snap, syllables_of, words_of
from vbank.speech.mandarin_set import MandarinUtterance, expected_phrases, mandarin_utterances
from vbank.speech.whisper import WhisperRecognizer, packaged_base_model_dir

#: measured here: clean 38/42 right, 10/10 rejected; 10 dB SNR 27/42, 8/10 (the goal is 95%:
#: not reached yet); the floors sit just below, so scoring that loses answers fails
IN_LIST_FLOOR = {"clean": 0.88, "noise10": 0.60}
REJECTED_FLOOR = {"clean": 1.0, "noise10": 0.7}


@pytest.fixture(scope="module")
def zh_whisper() -> WhisperRecognizer:
    return WhisperRecognizer(packaged_base_model_dir(), language="zh")


@pytest.fixture(scope="module")
def heard(zh_whisper: WhisperRecognizer) -> list[tuple[MandarinUtterance, str | None]]:
    # time per recognition is measured by vbank bench speech --conditions mandarin
    return [(u, zh_whisper.recognize(u.pcm, list(u.expected)).phrase)
            for u in mandarin_utterances()]


def test_chinese_text_compares_character_by_character_and_by_sound() -> None:
    assert words_of("我确认。") == ["我", "确", "认"]
    assert syllables_of("最後一個") == syllables_of("最后一个") == ["zui", "hou", "yi", "ge"]
    consent = list(expected_phrases("consent"))
    assert snap("我去任", consent) == "我确认"  # the right sounds, the wrong characters
    assert snap("從未逃之過", list(expected_phrases("q4"))) == "从未投资过"
    assert snap("我想开户", consent) is None


def test_the_packaged_base_model_is_joined_once_and_reused(tmp_path: Path) -> None:
    folder = packaged_base_model_dir(tmp_path / "base")
    model = folder / "model.bin"
    made = model.stat().st_mtime_ns
    assert packaged_base_model_dir(tmp_path / "base") == folder
    assert model.stat().st_mtime_ns == made
    assert {p.name for p in folder.iterdir()} == {"model.bin", "config.json", "tokenizer.json",
                                                  "vocabulary.txt"}


@pytest.mark.parametrize("condition", ["clean", "noise10"])
def test_mandarin_answers_are_recognised_and_other_speech_rejected(
        heard: list[tuple[MandarinUtterance, str | None]], condition: str) -> None:
    rows = [(u, p) for u, p in heard if u.condition == condition]
    answers = [(u, p) for u, p in rows if u.answer is not None]
    others = [(u, p) for u, p in rows if u.answer is None]
    assert len(answers) >= 30 and len(others) >= 8
    right = sum(p == u.answer for u, p in answers) / len(answers)
    rejected = sum(p is None for _, p in others) / len(others)
    assert right >= IN_LIST_FLOOR[condition], [(u.said, p) for u, p in answers if p != u.answer]
    assert rejected >= REJECTED_FLOOR[condition], [(u.said, p) for u, p in others if p]


def test_a_consent_is_never_heard_as_its_refusal(
        heard: list[tuple[MandarinUtterance, str | None]]) -> None:
    refusals = {"不同意", "我不同意"}
    for utterance, phrase in heard:
        if utterance.answer in ("我确认", "确认", "我同意"):
            assert phrase not in refusals, utterance.name
        if utterance.answer in refusals:
            assert phrase not in ("我确认", "确认", "我同意"), utterance.name

