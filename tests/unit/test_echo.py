"""The echo canceller (``vbank.speech.echo`` around libspeexdsp) on synthesized speech through
a simulated room: what it removes, what it keeps, how it follows the delay,
and the client's tracks around it."""

from __future__ import annotations

import asyncio
import fractions
import itertools
import logging

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamTrack

from client.lobby import echo as lobby_echo
from client.lobby.echo import EchoFreeMicrophone, SpeakerFeed, echo_canceller
from vbank.bench.echo import room
from vbank.speech import speex
from vbank.speech.audio import Pcm, resample
from vbank.speech.echo import EchoCanceller
from vbank.speech.speex import SpeexEcho
from vbank.speech.tts import EspeakSynthesizer

RATE = 16000
FRAME = 320


@pytest.fixture(scope="module")
def far48() -> Pcm:
    """The far side's voice at 48 kHz, as it arrives: about 9 s of espeak's English."""
    return EspeakSynthesizer("en").synthesize(
        "Welcome to the branch. I am the digital teller, and I can help you with opening "
        "hours, fees, loans and your points. Please have your identity card ready.")


@pytest.fixture(scope="module")
def far(far48: Pcm) -> Pcm:
    return resample(far48, 48000, RATE)


@pytest.fixture(scope="module")
def near() -> Pcm:
    """The customer: another voice, another language."""
    voice = EspeakSynthesizer("zh").synthesize("你好，我想问一下转账的手续费。")
    return resample(voice, 48000, RATE)


def through_room(far: Pcm, delay_s: float, seed: int = 3) -> np.ndarray:
    echo = np.convolve(far.astype(np.float32), room(RATE, delay_s, np.random.default_rng(seed)))
    return echo[:len(far)]


def feed(aec: EchoCanceller, far: Pcm, mic: np.ndarray, mic_late_s: float = 0.01) -> Pcm:
    """The speaker handed 20 ms frames on time, the microphone delivering 341-sample
    periods ``mic_late_s`` after they were heard; returns the output lined up with ``mic``."""
    mic = np.clip(mic, -32768, 32767).astype(np.int16)
    events = [((i + FRAME) / RATE, 0, i, i + FRAME) for i in range(0, len(far), FRAME)]
    edges = [*range(0, len(mic), 341), len(mic)]
    events += [(b / RATE + mic_late_s, 1, a, b) for a, b in itertools.pairwise(edges)]
    out = []
    for at, side, a, b in sorted(events):
        if side == 0:
            aec.played(far[a:b], at)
        else:
            out.append(aec.captured(mic[a:b], at))
    clean = np.concatenate(out)[aec.latency:]
    return np.concatenate([clean, np.zeros(len(mic) - len(clean), np.int16)])


def db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-9))


# ------------------------------------------------------------------ the canceller
LATE = slice(5 * RATE, 8 * RATE)  # past the learning (about 3 s of speech)


def test_the_echo_of_the_speaker_is_removed_once_learnt(far: Pcm) -> None:
    echo = through_room(far, 0.06)
    aec = EchoCanceller(RATE)
    out = feed(aec, far, echo)
    assert aec.learnt and aec.delay_s == pytest.approx(0.06 + 0.01, abs=0.005)
    assert db(echo[LATE]) - db(out[LATE]) > 25  # measured: 43 dB


def test_the_filter_alone_removes_most_of_the_echo(far: Pcm) -> None:
    echo = through_room(far, 0.06)
    out = feed(EchoCanceller(RATE, suppress=False), far, echo)
    assert db(echo[LATE]) - db(out[LATE]) > 15  # measured: 23 dB


def test_the_customers_voice_is_kept_while_both_talk(far: Pcm, near: Pcm) -> None:
    start = 6 * RATE
    voice = np.zeros(len(far), np.float32)
    voice[start:start + len(near)] = near[:len(far) - start]
    out = feed(EchoCanceller(RATE), far, through_room(far, 0.06) + voice)
    part = slice(start, len(far))
    v, y = voice[part].astype(np.float64), out[part].astype(np.float64)
    gain = float(np.dot(y, v) / np.dot(v, v))
    assert gain > 0.7 and np.corrcoef(y, v)[0, 1] > 0.85  # measured: 0.93 and 0.97


def test_a_long_delay_is_measured_and_the_reference_follows_it(far: Pcm) -> None:
    echo = through_room(far, 0.3)  # beyond the filter's reach from where the clock puts it
    aec = EchoCanceller(RATE)
    out = feed(aec, far, echo)
    assert aec.delay_s == pytest.approx(0.3 + 0.01, abs=0.005)  # the room and the microphone
    assert aec.realigned >= 1
    assert db(echo[LATE]) - db(out[LATE]) > 25  # measured: 46 dB


def test_the_echo_is_turned_down_until_the_filter_has_learnt_it(far: Pcm) -> None:
    echo = through_room(far, 0.06)
    aec = EchoCanceller(RATE)
    first = slice(0, RATE)  # the filter has learnt little in a second
    out = feed(aec, far[first], echo[first])
    assert not aec.learnt
    assert db(echo[first]) - db(out[first]) > 30  # measured: 42 dB


def test_a_speaker_that_ran_dry_has_its_echo_learnt_again(far: Pcm) -> None:
    aec = EchoCanceller(RATE)
    feed(aec, far, through_room(far, 0.06))
    assert aec.learnt
    end = len(far) / RATE
    aec.played(far[:FRAME], end + 0.5)  # the network held the far side back for 0.5 s
    assert not aec.learnt


def test_the_microphone_comes_out_in_whole_frames_in_order(near: Pcm) -> None:
    aec = EchoCanceller(RATE)  # nothing played: the voice passes
    got = [aec.captured(near[i:i + 341], i / RATE) for i in range(0, len(near), 341)]
    assert all(len(g) % FRAME == 0 for g in got)
    joined = np.concatenate(got)[aec.latency:]
    assert len(joined) == len(near) // FRAME * FRAME - aec.latency
    assert np.corrcoef(joined, near[:len(joined)])[0, 1] > 0.95


def test_speex_takes_frames_of_its_size_only() -> None:
    engine = SpeexEcho(RATE, FRAME, RATE // 4)
    with pytest.raises(ValueError, match="frames of 320 samples, not 160 and 320"):
        engine.cancel(np.zeros(160, np.int16), np.zeros(FRAME, np.int16))


def test_without_libspeexdsp_the_client_says_so_once_and_goes_on(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(speex, "speexdsp", lambda: None)
    monkeypatch.setattr(lobby_echo, "_said_off", False)
    with caplog.at_level(logging.WARNING, logger="client.lobby.echo"):
        assert echo_canceller() is None
        assert echo_canceller() is None
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "apt-get install libspeexdsp1" in notices[0]


# ------------------------------------------------------------------ the client's tracks
class Frames(MediaStreamTrack):
    """Audio frames from an array: 20 ms at 48 kHz, stereo as aiortc decodes them."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray, stereo: bool) -> None:
        super().__init__()
        self._pcm, self._stereo, self._at = pcm, stereo, 0

    async def recv(self) -> av.AudioFrame:
        chunk = np.zeros(960, np.int16)  # silence after the end
        part = self._pcm[self._at:self._at + 960]
        chunk[:len(part)] = part
        layout = "stereo" if self._stereo else "mono"
        data = np.repeat(chunk, 2)[None, :] if self._stereo else chunk[None, :]
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout=layout)
        frame.sample_rate, frame.pts = 48000, self._at
        frame.time_base = fractions.Fraction(1, 48000)
        self._at += 960
        return frame


async def test_the_microphone_track_sends_the_echo_free_audio(far48: Pcm, far: Pcm) -> None:
    echo = np.clip(np.repeat(through_room(far, 0.06), 3), -32768, 32767)  # heard at 48 kHz
    canceller = echo_canceller()
    assert canceller is not None
    speaker = SpeakerFeed(Frames(far48, stereo=True), canceller)
    microphone = EchoFreeMicrophone(Frames(echo, stereo=False), canceller)
    sent: list[np.ndarray] = []
    for _ in range(len(far48) // 960):
        played = await speaker.recv()  # what the speaker is handed, then what it hears
        assert isinstance(played, av.AudioFrame) and played.samples == 960
        frame = await microphone.recv()
        assert (frame.sample_rate, frame.layout.name) == (RATE, "mono")
        sent.append(frame.to_ndarray().reshape(-1))
        await asyncio.sleep(0)
    out = np.concatenate(sent)
    assert canceller.learnt
    heard = echo[::3]
    assert db(heard[LATE]) - db(out[LATE]) > 20
    microphone.stop()
    assert microphone.readyState == "ended"
