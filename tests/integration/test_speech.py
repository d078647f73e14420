"""Speech engines with the models that ship in packages: synthesized speech in, text out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from vbank.rtc.packets import MediaPacket
from vbank.rtc.peer import encode_opus_tone
from vbank.speech import SpeechError
from vbank.speech.agent import Faq
from vbank.speech.asr import PocketSphinxRecognizer, VoskRecognizer, packaged_korean_model
from vbank.speech.audio import RATE, rms_dbfs
from vbank.speech.digital_human import FAQ_PATH
from vbank.speech.intents import Embedder, IntentMatcher
from vbank.speech.tracks import OpusDecoderTap, SpeechTrack
from vbank.speech.tts import EspeakSynthesizer, PiperSynthesizer

ANSWERS = ["I confirm", "yes", "no", "talk to a person", "option a", "option b"]


def padded(pcm: np.ndarray) -> np.ndarray:
    gap = np.zeros(RATE // 5, np.int16)
    return np.concatenate([gap, pcm, gap])


@pytest.fixture(scope="module")
def piper() -> PiperSynthesizer:
    return PiperSynthesizer()


@pytest.fixture(scope="module")
def sphinx() -> PocketSphinxRecognizer:
    return PocketSphinxRecognizer()


@pytest.mark.parametrize("said,expected", [("I confirm.", "I confirm"), ("Yes.", "yes"),
                                           ("No.", "no"), ("Option B.", "option b"),
                                           ("Talk to a person.", "talk to a person")])
def test_piper_speech_is_recognized_against_the_step_grammar(
        piper: PiperSynthesizer, sphinx: PocketSphinxRecognizer, said: str, expected: str) -> None:
    result = sphinx.recognize(padded(piper.synthesize(said)), ANSWERS)
    assert result.phrase == expected and result.mode == "grammar"


def test_off_grammar_speech_falls_back_to_free_decoding(
        piper: PiperSynthesizer, sphinx: PocketSphinxRecognizer) -> None:
    result = sphinx.recognize(padded(piper.synthesize("What is the weather like on Mars?")),
                              ANSWERS)
    assert result.phrase is None and result.mode == "free"
    assert "weather" in result.text


def test_silence_and_noise_are_heard_as_nothing_expected(
        sphinx: PocketSphinxRecognizer) -> None:
    noise = (np.random.default_rng(3).standard_normal(RATE) * 2000).astype(np.int16)
    for pcm in (np.zeros(RATE, np.int16), noise):
        assert sphinx.recognize(pcm, ANSWERS).phrase is None


def test_espeak_speaks_chinese_and_english() -> None:
    for language, text in (("zh", "您好，请问有什么可以帮您？"), ("en", "Good morning.")):
        pcm = EspeakSynthesizer(language).synthesize(text)
        assert len(pcm) / RATE > 0.5 and rms_dbfs(pcm) > -40


def test_vosk_recognizes_korean_with_the_packaged_model() -> None:
    recognizer = VoskRecognizer(packaged_korean_model(), "ko")
    voice = EspeakSynthesizer("ko")
    expected = ["네", "아니요", "대출", "상담원 연결"]

    def hits(phrase: str, tries: int) -> int:
        return sum(recognizer.recognize(padded(voice.synthesize(phrase)), expected).phrase
                   == phrase for _ in range(tries))

    # eSpeak's Korean is robotic and varies from one synthesis to the next: the short
    # answers come back exactly every time; "상담원 연결" only about one time in four (so
    # it is tried twenty times); "대출" is misheard
    assert (hits("네", 3), hits("아니요", 3)) == (3, 3)
    assert hits("상담원 연결", 20) >= 1


def test_a_folder_that_is_not_a_vosk_model_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="not a vosk model directory"):
        VoskRecognizer(tmp_path, "en")


def test_intents_match_paraphrases_and_reject_out_of_scope() -> None:
    matcher = IntentMatcher(Embedder(), {
        "opening_hours": ["when are you open", "what are your opening hours"],
        "talk_to_person": ["I want to talk to a person", "can I speak to a human teller"],
        "queue_status": ["how long do I have to wait", "where am I in the queue"],
        "goodbye": ["goodbye", "that's all, thank you"],
    })
    assert matcher.match("what time do you close today").intent == "opening_hours"
    assert matcher.match("how much longer is the wait").intent == "queue_status"
    assert matcher.match("I don't want to talk to a machine").intent == "talk_to_person"
    assert matcher.match("what's the weather like").intent is None
    assert matcher.match("").intent is None


def test_the_faq_tells_points_questions_from_queue_questions() -> None:
    faq = Faq.load(FAQ_PATH)
    matcher = IntentMatcher(Embedder(), faq.examples)
    assert matcher.match("how many points have I got").intent == "my_points"
    assert matcher.match("what's my points balance please").intent == "my_points"
    assert matcher.match("what can I get for my points").intent == "points_items"
    assert matcher.match("what rewards can I redeem").intent == "points_items"
    assert matcher.match("how many people are in front of me").intent == "queue_status"


def test_opus_tap_decodes_what_the_server_relays() -> None:
    tap = OpusDecoderTap()
    frames = []
    for i, data in enumerate(encode_opus_tone(0.5)):
        frames += tap.decode(MediaPacket("audio", "opus", data, i * 960, RATE, False, 0.0))
    assert len(frames) >= 20 and all(f.dtype == np.int16 for f in frames)
    assert rms_dbfs(np.concatenate(frames[5:])) > -30  # the tone, not silence
    damaged = tap.decode(MediaPacket("audio", "opus", b"\xff" * 3, 0, RATE, False, 0.0))
    assert isinstance(damaged, list)  # a damaged packet is a gap, never an exception


async def test_speech_track_plays_queued_audio_then_silence_and_flushes_at_once() -> None:
    track = SpeechTrack()
    started: list[object] = []
    track.on_started = lambda tag, _at: started.append(tag)
    track.play(np.full(RATE // 10, 5000, np.int16), tag="greeting")  # 5 frames
    loud = [float(np.abs((await track.recv()).to_ndarray()).max()) for _ in range(6)]
    assert loud[:5] == [5000.0] * 5 and loud[5] == 0.0
    assert started == ["greeting"]
    track.play(np.full(RATE, 5000, np.int16))
    assert track.flush() == 50
    assert float(np.abs((await track.recv()).to_ndarray()).max()) == 0.0
    track.stop()
    await asyncio.sleep(0)
