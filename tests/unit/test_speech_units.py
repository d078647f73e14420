"""Speech pieces that need no model: turn detection, clauses, snapping, the speech track."""

from __future__ import annotations

import numpy as np

from vbank.speech.asr import snap, word_distance
from vbank.speech.audio import FRAME_SAMPLES, RATE, resample
from vbank.speech.tts import split_clauses
from vbank.speech.turns import TurnDetector, TurnEnded, TurnPaused, TurnStarted

FRAME_S = FRAME_SAMPLES / RATE


def tone(seconds: float, amplitude: int = 6000) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def run(detector: TurnDetector, speech: list[float],
        verdicts: dict[int, bool] | None = None) -> list[object]:
    """Feed one frame per probability; answer the n-th pause with ``verdicts[n]``."""
    events: list[object] = []
    pauses = 0
    frame = np.zeros(FRAME_SAMPLES, np.int16)
    for i, p in enumerate(speech):
        for event in detector.feed(frame, i * FRAME_S, p):
            events.append(event)
            if isinstance(event, TurnPaused) and verdicts is not None:
                pauses += 1
                if pauses in verdicts:
                    events += detector.verdict(event.seq, verdicts[pauses])
    return events


def frames(seconds: float, p: float) -> list[float]:
    return [p] * round(seconds / FRAME_S)


def kinds(events: list[object]) -> list[type]:
    return [type(e) for e in events]


def test_a_finished_sentence_ends_at_the_first_short_pause() -> None:
    events = run(TurnDetector(), frames(1, 0.0) + frames(1.2, 0.9) + frames(1, 0.0), {1: True})
    assert kinds(events) == [TurnStarted, TurnPaused, TurnEnded]
    started, _, ended = events
    assert isinstance(started, TurnStarted) and isinstance(ended, TurnEnded)
    assert abs(started.at - 1.0) < 0.1
    assert abs(ended.ended - 2.2) < 0.05 and ended.reason == "complete"
    assert len(ended.pcm) / RATE >= 1.2 + 0.2  # the speech and the pause that ended it


def test_a_thinking_pause_judged_unfinished_keeps_the_turn_open() -> None:
    speech = frames(0.5, 0.0) + frames(1, 0.9) + frames(0.7, 0.1) + frames(1, 0.9) + \
        frames(1, 0.0)
    events = run(TurnDetector(), speech, {1: False, 2: True})
    assert kinds(events) == [TurnStarted, TurnPaused, TurnPaused, TurnEnded]
    ended = events[-1]
    assert isinstance(ended, TurnEnded) and abs(ended.ended - 3.2) < 0.05


def test_an_unfinished_verdict_still_ends_the_turn_after_the_longest_pause() -> None:
    detector = TurnDetector(max_pause_s=1.2)
    events = run(detector, frames(0.2, 0.0) + frames(1, 0.9) + frames(2, 0.0), {1: False})
    assert kinds(events) == [TurnStarted, TurnPaused, TurnEnded]
    ended = events[-1]
    assert isinstance(ended, TurnEnded) and ended.reason == "pause"
    assert abs(ended.ended - 1.2) < 0.05


def test_a_verdict_that_comes_after_the_caller_spoke_again_is_ignored() -> None:
    detector = TurnDetector()
    events = run(detector, frames(1, 0.9) + frames(0.3, 0.0))
    pause = events[-1]
    assert isinstance(pause, TurnPaused)
    run_on = [detector.feed(np.zeros(FRAME_SAMPLES, np.int16), 1.3 + i * FRAME_S, 0.9)
              for i in range(5)]
    assert not any(run_on)
    assert detector.verdict(pause.seq, True) == []
    assert detector.speaking


def test_without_an_end_of_turn_model_silence_alone_ends_a_turn() -> None:
    detector = TurnDetector(judged=False, fallback_pause_s=0.6)
    events = run(detector, frames(1, 0.9) + frames(1, 0.0))
    assert kinds(events) == [TurnStarted, TurnEnded]
    ended = events[-1]
    assert isinstance(ended, TurnEnded) and ended.reason == "pause"


def test_clicks_coughs_and_doubtful_frames_open_no_turn() -> None:
    assert run(TurnDetector(), frames(0.5, 0.0) + frames(0.06, 0.95) + frames(0.5, 0.0)) == []
    assert run(TurnDetector(), frames(3, 0.4)) == []  # never clearly speech


def test_a_customer_talking_on_is_cut_into_turns() -> None:
    events = run(TurnDetector(max_turn_s=2.0), frames(0.5, 0.0) + frames(5, 0.9))
    assert sum(isinstance(e, TurnEnded) and e.reason == "long" for e in events) >= 2


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

    from vbank.media.packets import AIORTC_AUDIO_LEVEL as reference
    from vbank.media.packets import audio_level_dbov

    rng = np.random.default_rng(3)
    for loudness in (0, 1, 30, 1000, 12000, 32767):
        samples = np.clip(rng.standard_normal(960) * loudness, -32768, 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        assert audio_level_dbov(frame) == reference(frame), loudness


def test_words_that_stop_mid_phrase_do_not_end_a_turn_and_a_question_does() -> None:
    from vbank.speech.listener import decide, sounds_unfinished

    assert sounds_unfinished("I would like to")
    assert sounds_unfinished("Had he married a more amiable woman, he might have...")
    assert not sounds_unfinished("What are your opening hours?")
    assert not sounds_unfinished("He might even have been made amiable himself.")
    assert not decide(0.9, "Ten of")  # sounds finished, but the words are not
    assert decide(0.9, "Seven of clubs.")
    assert not decide(0.3, "Seven of clubs.")  # the model hears more to come
    assert decide(0.3, "Can I speak to somebody, please?")  # a whole question
    assert decide(0.9, None)  # no words known: the model decides
    # a long turn ends only where Whisper wrote a finished sentence
    assert not decide(0.95, "Mr. John Dashwood had then leisure to consider")
    assert decide(0.95, "Mr. John Dashwood had then leisure to consider it.")
    assert not decide(0.98, "Had he married a more amiable woman, he might...")
    assert not decide(0.98, "Unless to be r-")
    assert not decide(0.98, "And Mr.")  # an abbreviation is no full stop
    assert not decide(0.98, "He might")  # nor a modal or a pronoun an end
    assert decide(0.9, "7 of clubs")  # a short answer: the model's word is enough
    assert decide(0.9, "No.")
    assert not decide(0.2, "How do you open?")  # a question needs something from the model


def test_a_transcript_that_starts_over_keeps_its_first_sentence_only() -> None:
    from vbank.speech.whisper import without_repeats

    assert without_repeats("What does a transfer cost? What does a transfer") == \
        "What does a transfer cost?"
    assert without_repeats("Hello there. How are you? Hello there.") == \
        "Hello there. How are you?"
    assert without_repeats("He was not. An ill disposed young man.") == \
        "He was not. An ill disposed young man."
    assert without_repeats("Yes. Yes.") == "Yes. Yes."  # one word said twice is speech
    assert without_repeats("") == ""


def test_numbers_and_abbreviations_are_compared_as_spoken_words() -> None:
    from vbank.speech.asr import words_of

    assert words_of("Go forward 10 meters.") == ["go", "forward", "ten", "meters"]
    assert words_of("Mr. John, cold-hearted") == ["mister", "john", "cold", "hearted"]
    assert words_of("1234") == ["one", "thousand", "two", "hundred", "thirty", "four"]
    assert snap("Option 8", ["option a", "option b"]) is None  # "8" is not "a"


def test_long_speech_is_cut_for_recognition_where_it_is_quietest() -> None:
    from vbank.speech.whisper import WINDOW_S, windows

    rng = np.random.default_rng(2)
    audio = (rng.standard_normal(16000 * 25) * 0.3).astype(np.float32)  # 25 s of "speech"
    audio[int(16000 * 8.4):int(16000 * 8.6)] *= 0.01  # a breath at 8.5 s
    pieces = windows(audio)
    assert all(len(p) <= WINDOW_S * 16000 for p in pieces)
    assert np.array_equal(np.concatenate(pieces), audio)  # nothing lost, nothing twice
    assert 8.4 <= len(pieces[0]) / 16000 <= 8.6  # cut in the breath, not at 10 s
    assert windows(audio[:16000 * 3])[0].size == 16000 * 3  # short speech: one window
