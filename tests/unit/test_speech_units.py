"""Speech pieces that need no model: turn detection, clauses, snapping, the speech track."""

from __future__ import annotations

import numpy as np

from vbank.speech.asr import snap, word_distance
from vbank.speech.audio import FRAME_SAMPLES, RATE, frames_of, resample
from vbank.speech.tts import split_clauses
from vbank.speech.turns import TurnDetector, TurnEnded, TurnStarted

FRAME_S = FRAME_SAMPLES / RATE


def tone(seconds: float, amplitude: int = 6000) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def quiet(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.standard_normal(int(seconds * RATE)) * 30).astype(np.int16)


def run(detector: TurnDetector, pcm: np.ndarray) -> list[object]:
    events: list[object] = []
    for i, frame in enumerate(frames_of(pcm)):
        events += detector.feed(frame, i * FRAME_S)
    return events


def test_a_turn_starts_with_speech_and_ends_after_trailing_silence() -> None:
    events = run(TurnDetector(end_silence_s=0.4), np.concatenate([quiet(1), tone(1.2), quiet(1)]))
    assert [type(e) for e in events] == [TurnStarted, TurnEnded]
    started, ended = events
    assert isinstance(started, TurnStarted) and isinstance(ended, TurnEnded)
    assert abs(started.at - 1.0) < 0.1
    assert abs(ended.ended - 2.2) < 0.1
    assert len(ended.pcm) / RATE >= 1.2


def test_clicks_and_steady_noise_open_no_turn() -> None:
    click = np.concatenate([quiet(0.5), tone(0.03), quiet(0.5)])
    assert run(TurnDetector(), click) == []
    assert run(TurnDetector(), quiet(3)) == []


def test_a_customer_talking_on_is_cut_into_turns() -> None:
    events = run(TurnDetector(max_turn_s=2.0), np.concatenate([quiet(0.5), tone(5), quiet(1)]))
    assert sum(isinstance(e, TurnEnded) for e in events) >= 2


def test_clauses_split_at_punctuation_in_both_scripts() -> None:
    assert split_clauses("Good morning. How can I help you today?") == [
        "Good morning.", "How can I help you today?"]
    assert split_clauses("您好。请问有什么可以帮您？") == ["您好。", "请问有什么可以帮您？"]
    assert split_clauses("Yes, sure.") == ["Yes, sure."]


def test_snapping_tolerates_a_word_wrong_but_not_another_sentence() -> None:
    assert word_distance(["i", "confirm"], ["i", "confirmed"]) == 1
    phrases = ["I confirm", "talk to a person", "option b"]
    assert snap("talk to the person", phrases) == "talk to a person"
    assert snap("what is the weather like", phrases) is None
    assert snap("", phrases) is None


def test_resample_keeps_duration_and_level() -> None:
    pcm = tone(1.0)
    down = resample(pcm, RATE, 16000)
    assert len(down) == 16000
    assert abs(np.abs(down).max() - np.abs(pcm).max()) < 600


def test_a_cached_voice_synthesizes_each_sentence_once() -> None:
    from vbank.speech.tts import CachedSynthesizer

    class Counting:
        name, languages = "counting", ("en",)
        calls = 0

        def synthesize(self, text: str) -> np.ndarray:
            self.calls += 1
            return np.full(48000, len(text), np.int16)  # one second each

    engine = Counting()
    voice = CachedSynthesizer(engine, max_seconds=2)
    first = voice.synthesize("hello")
    assert voice.synthesize("hello") is first and engine.calls == 1
    assert not first.flags.writeable  # shared between sessions: nobody may change it
    voice.synthesize("goodbye")
    voice.synthesize("thanks")  # over two seconds kept: the oldest ("hello") goes
    assert voice.synthesize("goodbye")[0] == len("goodbye") and engine.calls == 3
    voice.synthesize("hello")
    assert engine.calls == 4 and (voice.hits, voice.misses) == (2, 4)


def test_audio_levels_match_aiortcs_reference() -> None:
    import av

    from vbank.rtc.packets import AIORTC_AUDIO_LEVEL as reference
    from vbank.rtc.packets import audio_level_dbov

    rng = np.random.default_rng(3)
    for loudness in (0, 1, 30, 1000, 12000, 32767):
        samples = np.clip(rng.standard_normal(960) * loudness, -32768, 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        assert audio_level_dbov(frame) == reference(frame), loudness
