"""Listening conditions: real recordings read right, noise at the ratio asked, a mid-sentence
pause where a speaker would pause. Measured here independently of the module's own sums."""

from __future__ import annotations

import re
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vbank.speech.audio import RATE
from vbank.speech.conditions import (
    Clip,
    NotAWavFile,
    pad,
    pause_point,
    read_wav,
    real_clips,
    with_noise,
    with_pause,
    write_wav,
)

FRAME = RATE // 50  # 20 ms
SPEECH = (32768 * 10 ** (-45 / 20)) ** 2  # mean square of a -45 dBFS frame


@pytest.fixture(scope="module")
def clips() -> dict[str, Clip]:
    return {clip.name: clip for clip in real_clips()}


def frame_power(pcm: np.ndarray) -> np.ndarray:
    x = pcm.astype(np.float64)
    return np.mean(x[:len(x) // FRAME * FRAME].reshape(-1, FRAME) ** 2, axis=1)


def measured_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Speech power over the clean clip's loud frames against the added noise's power."""
    power = frame_power(clean)
    noise = noisy.astype(np.float64) - clean.astype(np.float64)
    return float(10 * np.log10(np.mean(power[power > SPEECH]) / np.mean(noise ** 2)))


def db(power: float | np.floating[Any]) -> float:
    """A mean square in dB below full scale."""
    return float(10 * np.log10(power / 32768 ** 2))


def test_the_real_recordings_are_read_at_48_khz_with_their_words(
        clips: dict[str, Clip]) -> None:
    assert len(clips) == 11
    assert clips["goforward"].text == "go forward ten meters"
    assert clips["librivox-0880"].text == "he was not an ill disposed young man"
    assert clips["cards-004"].text == "five five"
    for clip in clips.values():
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", clip.text), clip.text
        assert clip.pcm.dtype == np.int16
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "audio" / "real"
    with wave.open(str(folder / "librivox-0880.wav")) as original:
        assert original.getframerate() == 16000
        assert len(clips["librivox-0880"].pcm) == 3 * original.getnframes()


@pytest.mark.parametrize("name", ["librivox-0870", "cards-005", "goforward"])
@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
@pytest.mark.parametrize("band", [None, 8000.0])
def test_noise_is_added_at_the_ratio_asked_for(clips: dict[str, Clip], name: str, snr: float,
                                               band: float | None) -> None:
    clean = clips[name].pcm
    noisy = with_noise(clean, snr, band_hz=band)
    assert noisy.dtype == np.int16 and len(noisy) == len(clean)
    assert abs(measured_snr(clean, noisy) - snr) < 0.5


def test_the_ratio_is_the_speechs_not_the_silences(clips: dict[str, Clip]) -> None:
    """Long silence around the words changes nothing: the noise is set against the speech."""
    clean = pad(clips["librivox-0880"].pcm, 3.0, 3.0)
    noisy = with_noise(clean, 10.0)
    assert abs(measured_snr(clean, noisy) - 10.0) < 0.5
    # the silence got the same noise as the speech: white, all along the clip
    added = noisy.astype(np.float64) - clean
    assert abs(db(np.mean(added[:2 * RATE] ** 2)) - db(np.mean(added ** 2))) < 0.5


def test_band_limited_noise_has_nothing_above_its_band(clips: dict[str, Clip]) -> None:
    clean = clips["librivox-0930"].pcm
    added = with_noise(clean, 10.0, band_hz=8000).astype(np.float64) - clean
    spectrum = np.abs(np.fft.rfft(added)) ** 2
    hz = np.fft.rfftfreq(len(added), 1 / RATE)
    assert spectrum[hz > 9000].sum() < 0.01 * spectrum[hz < 7000].sum()
    white = with_noise(clean, 10.0).astype(np.float64) - clean
    spectrum = np.abs(np.fft.rfft(white)) ** 2
    assert spectrum[hz > 9000].sum() > spectrum[hz < 7000].sum()


def test_the_same_seed_gives_the_same_noise(clips: dict[str, Clip]) -> None:
    clean = clips["cards-001"].pcm
    assert np.array_equal(with_noise(clean, 10, seed=3), with_noise(clean, 10, seed=3))
    assert not np.array_equal(with_noise(clean, 10, seed=3), with_noise(clean, 10, seed=4))
    assert np.array_equal(with_pause(clean, seed=1), with_pause(clean, seed=1))


@pytest.mark.parametrize("name", ["librivox-0870", "librivox-0920", "librivox-0880",
                                  "cards-005", "goforward"])
def test_the_pause_goes_mid_sentence_and_is_quiet(clips: dict[str, Clip], name: str) -> None:
    pcm = clips[name].pcm
    power = frame_power(pcm)
    loud = np.flatnonzero(power > SPEECH)
    start, end = loud[0] * FRAME, (loud[-1] + 1) * FRAME  # the speech, not the silence
    at = pause_point(pcm)
    assert start + 0.35 * (end - start) - FRAME <= at <= start + 0.65 * (end - start) + FRAME
    paused = with_pause(pcm, 0.7)
    inserted = round(0.7 * RATE)
    assert len(paused) == len(pcm) + inserted
    assert np.array_equal(paused[:at], pcm[:at])
    assert np.array_equal(paused[at + inserted:], pcm[at:])
    gap = paused[at:at + inserted].astype(np.float64)
    # as quiet as the clip's own background: its quietest tenth of frames, not digital zero
    background = db(np.percentile(power, 10))
    assert np.mean(gap ** 2) > 0 and db(np.mean(gap ** 2)) <= background + 1.0
    assert db(np.mean(gap ** 2)) < db(np.median(power[loud])) - 12
    # where it goes is a quiet moment of the speech (a gap between words)
    around = pcm[at - RATE * 3 // 100:at + RATE * 3 // 100].astype(np.float64)
    assert db(np.mean(around ** 2)) < db(np.median(power[loud])) - 10


def test_the_pause_follows_the_speech_not_the_silence_around_it(
        clips: dict[str, Clip]) -> None:
    pcm = clips["librivox-0930"].pcm
    padded = pad(pcm, 2.0, 0.5)
    assert len(padded) == len(pcm) + round(2.5 * RATE)
    assert not padded[:2 * RATE].any() and not padded[-RATE // 2:].any()
    assert pause_point(padded) == pause_point(pcm) + 2 * RATE
    assert len(with_pause(padded, 1.25)) == len(padded) + round(1.25 * RATE)


def test_silence_has_no_speech_to_measure_or_pause() -> None:
    with pytest.raises(ValueError, match="no speech"):
        with_noise(np.zeros(RATE, np.int16), 10)
    with pytest.raises(ValueError, match="no speech"):
        pause_point(np.zeros(RATE, np.int16))


def test_a_file_that_is_not_a_pcm_wav_is_refused_by_name(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all, but long enough to have a header's worth of bytes")
    with pytest.raises(ValueError, match=r"notes\.wav is not a PCM WAV file"):
        read_wav(text)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(NotAWavFile, match=r"empty\.wav is not a PCM WAV file"):
        read_wav(empty)
    floats = tmp_path / "float.wav"  # IEEE float (format 3): not PCM
    floats.write_bytes(b"RIFF" + (36 + 8).to_bytes(4, "little") + b"WAVEfmt "
                       + (16).to_bytes(4, "little") + (3).to_bytes(2, "little")
                       + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little")
                       + (64000).to_bytes(4, "little") + (4).to_bytes(2, "little")
                       + (32).to_bytes(2, "little") + b"data" + (8).to_bytes(4, "little")
                       + bytes(8))
    with pytest.raises(ValueError, match=r"float\.wav is not a PCM WAV file"):
        read_wav(floats)


def test_wav_files_of_other_rates_widths_and_channels_become_48_khz_mono(
        tmp_path: Path, clips: dict[str, Clip]) -> None:
    pcm = clips["cards-003"].pcm
    write_wav(tmp_path / "16k.wav", pcm, 16000)
    with wave.open(str(tmp_path / "16k.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
    back = read_wav(tmp_path / "16k.wav").astype(np.float64)
    assert len(back) == len(pcm)
    assert np.corrcoef(back, pcm)[0, 1] > 0.99  # a 16 kHz recording survives 16 kHz
    # stereo 24-bit at 8 kHz: left a tone, right silent → the tone at half level, mono
    t = np.arange(8000) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * 2 ** 23).astype(np.int32)
    frames = np.stack([tone, np.zeros_like(tone)], axis=1).reshape(-1)
    raw = np.stack([(frames >> s) & 0xFF for s in (0, 8, 16)], axis=1).astype(np.uint8)
    with wave.open(str(tmp_path / "stereo24.wav"), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(3)
        wav.setframerate(8000)
        wav.writeframes(raw.tobytes())
    mono = read_wav(tmp_path / "stereo24.wav").astype(np.float64)
    assert len(mono) == RATE
    assert abs(np.sqrt(np.mean(mono[RATE // 10:-RATE // 10] ** 2)) - 0.25 * 32768 / 2 ** 0.5) \
        < 200
