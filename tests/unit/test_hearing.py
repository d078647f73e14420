"""``heard:`` — what the runner accepts as proof that a sentence was spoken to an actor."""

from __future__ import annotations

import numpy as np
import pytest

from vbank.scenario.hearing import Ear, contains, literal_phrases, utterances
from vbank.speech.asr import words_of
from vbank.speech.tts import PiperSynthesizer


@pytest.mark.parametrize("pattern,phrases", [
    ("(?i)interest rate", [["interest rate"]]),
    ("(?i)open (daily|every day)", [["open daily"], ["open every day"]]),
    ("hours.*nine", [["hours", "nine"]]),
    (r"(?i)\bhelp( you)?\b", [["help you"], ["help"]]),
    ("[Ii]dentity card", [["identity card"]]),
    ("((", []),  # not a regex: nothing to listen for
])
def test_literal_phrases_of_a_pattern(pattern: str, phrases: list[list[str]]) -> None:
    assert literal_phrases(pattern) == phrases


def test_contains_allows_a_few_misheard_words_but_not_another_sentence() -> None:
    heard = words_of("oh well I am the bank digital system that can I help you today")
    assert contains(heard, words_of("how can i help you"))  # one word misheard
    assert not contains(heard, words_of("your card has been blocked"))
    assert not contains(heard, words_of("digital assistant"))  # two words: both must match
    assert not contains([], words_of("help"))


def frames(pcm: np.ndarray, t0: float = 100.0) -> list[tuple[float, np.ndarray]]:
    return [(t0 + i * 0.02, pcm[i * 960:(i + 1) * 960]) for i in range(pcm.size // 960)]


def test_utterances_split_at_pauses() -> None:
    tone = (np.sin(np.arange(48000) / 8) * 8000).astype(np.int16)
    quiet = np.zeros(48000, np.int16)
    spans = utterances(frames(np.concatenate([quiet, tone, quiet, tone[:24000], quiet])))
    assert [round(end - start, 1) for start, end, _ in spans] == [1.0, 0.5]


@pytest.fixture(scope="module")
def ear() -> Ear:
    return Ear("en")


@pytest.fixture(scope="module")
def sentence() -> list[tuple[float, np.ndarray]]:
    voice = PiperSynthesizer()
    speech = voice.synthesize("Please hold your identity card to the camera.")
    gap = np.zeros(48000, np.int16)
    return frames(np.concatenate([gap, speech, gap]))


def test_the_ear_hears_what_was_said(ear: Ear, sentence: list[tuple[float, np.ndarray]]) -> None:
    now = sentence[-1][0]
    end, texts = ear.hears(sentence, "(?i)identity card", now)
    assert end is not None and texts
    assert sentence[0][0] + 1.0 < end < now  # the end of the spoken words, not of the audio


@pytest.mark.parametrize("pattern", ["(?i)interest rate", "(?i)your card has been blocked"])
def test_the_ear_refuses_a_sentence_that_was_not_said(
        ear: Ear, sentence: list[tuple[float, np.ndarray]], pattern: str) -> None:
    end, texts = ear.hears(sentence, pattern, sentence[-1][0], final=True)
    assert end is None and texts  # something was recognised, just not that


def test_the_ear_hears_nothing_in_silence(ear: Ear) -> None:
    silence = frames(np.zeros(48000 * 3, np.int16))
    assert ear.hears(silence, "(?i)identity card", silence[-1][0], final=True) == (None, [])


def test_an_utterance_still_being_spoken_waits_unless_final(
        ear: Ear, sentence: list[tuple[float, np.ndarray]]) -> None:
    [(_, spoken_end, _)] = utterances(sentence)
    speaking = [f for f in sentence if f[0] <= spoken_end + 0.2]  # before the closing pause
    assert ear.hears(speaking, "(?i)identity card", speaking[-1][0])[0] is None
    assert ear.hears(speaking, "(?i)identity card", speaking[-1][0], final=True)[0] is not None
