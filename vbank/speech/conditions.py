"""Listening conditions: real people's recordings, and the same with noise or a pause.

Synthesized test speech is clean, evenly paced and says exactly the expected words. A branch
hears people: read sentences with their own microphone and room (``real_clips``, the
recordings in ``tests/fixtures/audio/real``), background noise at a chosen signal-to-noise
ratio (``with_noise``), a hesitation in the middle of a sentence (``with_pause``). Pure
numpy on the project's 48 kHz mono int16, deterministic for a seed; used by the tests, the
speech benchmark and ``scenes/scenarios/audio/make.py``, and ``read_wav`` plays a
scenario's ``{play: FILE.wav}``.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

import vbank
from vbank.speech import SpeechError
from vbank.speech.audio import FRAME_SAMPLES, RATE, Pcm, resample

#: a 20 ms frame louder than this is speech: the SNR is the speech's, not the silence's
ACTIVE_DBFS = -45.0
#: the background level of a clip is that of its quietest tenth of frames
BACKGROUND_SHARE = 0.1
#: a pause goes into the quietest stretch this long (a gap between words) ...
GAP_S = 0.06
#: ... between these fractions of the speech span (the middle, not the edges)
MIDDLE = (0.35, 0.65)


class NotAWavFile(SpeechError, ValueError):
    """A file that is not an uncompressed PCM WAV file; ``problem`` says what it is instead."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path} {problem}")
        self.problem = problem


@dataclass(frozen=True)
class Clip:
    """A recording of a person and what they say (lower case, no punctuation)."""

    name: str
    text: str
    pcm: NDArray[np.int16]  # 48 kHz mono


def real_folder() -> Path:
    """The repository's recordings of real people (``tests/fixtures/audio/real``)."""
    return Path(vbank.__file__).resolve().parents[1] / "tests" / "fixtures" / "audio" / "real"


def real_clips(folder: Path | None = None) -> list[Clip]:
    """The recordings listed in ``folder/transcripts.tsv`` (file, tab, words), in its order."""
    folder = folder or real_folder()
    clips = []
    for line in (folder / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            file, _, text = line.partition("\t")
            clips.append(Clip(Path(file).stem, text.strip(), read_wav(folder / file)))
    return clips


def read_wav(path: Path) -> Pcm:
    """A PCM WAV file (8, 16, 24 or 32-bit, any rate, any channels) as 48 kHz mono int16.

    ``NotAWavFile`` (a ``ValueError``) names the file and what is wrong with it; ``OSError``
    when it cannot be read at all.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        why = str(exc) or "it ends early"
        raise NotAWavFile(path, f"is not a PCM WAV file ({why})") from exc
    if width == 1:  # 8-bit WAV is unsigned
        samples = (np.frombuffer(data, np.uint8).astype(np.float32) - 128) / 128
    elif width == 3:
        raw = np.frombuffer(data[:len(data) // 3 * 3], np.uint8).reshape(-1, 3)
        wide = (raw[:, 0].astype(np.int32) | raw[:, 1].astype(np.int32) << 8
                | raw[:, 2].astype(np.int32) << 16)
        samples = ((wide ^ 0x800000) - 0x800000).astype(np.float32) / 2 ** 23
    elif width in (2, 4):
        samples = np.frombuffer(data, "<i2" if width == 2 else "<i4").astype(np.float32)
        samples /= 2 ** (8 * width - 1)
    else:
        raise NotAWavFile(path, f"has {8 * width}-bit samples; use 16-bit PCM")
    if rate <= 0 or channels <= 0:
        raise NotAWavFile(path, f"gives {rate} Hz and {channels} channels")
    mono = samples[:len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    return resample(mono, rate, RATE) if mono.size else np.zeros(0, np.int16)


def write_wav(path: Path, pcm: Pcm, rate: int = RATE) -> None:
    """48 kHz mono ``pcm`` as a 16-bit mono WAV file at ``rate`` Hz (resampled to it)."""
    out = resample(pcm, RATE, rate) if rate != RATE else pcm
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(out.astype("<i2").tobytes())


def pad(pcm: Pcm, before_s: float, after_s: float) -> Pcm:
    """Digital silence before and after."""
    if before_s < 0 or after_s < 0:
        raise ValueError("padding must be 0 s or more")
    return np.concatenate([np.zeros(round(before_s * RATE), np.int16), pcm,
                           np.zeros(round(after_s * RATE), np.int16)])


def with_noise(pcm: Pcm, snr_db: float, seed: int = 0, band_hz: float | None = None) -> Pcm:
    """``pcm`` with Gaussian noise at ``snr_db`` below the speech (its frames louder than
    ``ACTIVE_DBFS``; silence does not count), the same for the same seed.

    The noise is white over the whole band; with ``band_hz`` only below it (white within
    it). A 16 kHz recording has nothing above 8 kHz, and a recognizer working at 16 kHz
    hears nothing there: ``band_hz=8000`` keeps the ratio true in the band the speech has,
    and keeps it when the result is saved at 16 kHz.
    """
    x = pcm.astype(np.float64)
    target = _speech_power(x) / 10 ** (snr_db / 10)
    rng = np.random.default_rng(seed)
    if band_hz is None:
        noise = rng.standard_normal(len(x))
    else:  # white at twice the band, brought up to the project's rate
        low = round(2 * band_hz)
        g = gcd(low, RATE)
        edge = 64 * RATE // low  # the filter's ramp at either end is cut off
        noise = resample_poly(rng.standard_normal(len(x) * low // RATE + 130), RATE // g,
                              low // g)[edge:edge + len(x)]
    noise *= np.sqrt(target / np.mean(noise ** 2))  # exactly the power asked for
    return _int16(x + noise)


def speech_span(pcm: Pcm) -> tuple[int, int]:
    """Sample indices where the speech starts and ends (its first and last loud frames)."""
    loud = np.flatnonzero(_frame_power(pcm.astype(np.float64)) > _active_power())
    if not loud.size:
        raise ValueError(f"no speech: no 20 ms frame is louder than {ACTIVE_DBFS:g} dBFS")
    return int(loud[0]) * FRAME_SAMPLES, (int(loud[-1]) + 1) * FRAME_SAMPLES


def pause_point(pcm: Pcm) -> int:
    """Where a pause fits in mid-sentence: the middle of the quietest ``GAP_S`` stretch
    between ``MIDDLE`` fractions of the speech span (a gap between words)."""
    start, end = speech_span(pcm)
    low, high = (start + round((end - start) * f) for f in MIDDLE)
    window = round(GAP_S * RATE)
    if high - low < window:
        raise ValueError("the speech is too short to pause in")
    energy = np.concatenate([[0.0], np.cumsum(pcm[low:high].astype(np.float64) ** 2)])
    sums = energy[window:] - energy[:-window]  # each window's energy, one per start sample
    return low + int(np.argmin(sums)) + window // 2


def with_pause(pcm: Pcm, pause_s: float = 0.7, seed: int = 0, at: int | None = None) -> Pcm:
    """``pcm`` with ``pause_s`` of near-silence at sample ``at`` (default
    :func:`pause_point`): noise at the clip's own background level (its quietest frames), as
    a room sounds when a speaker stops."""
    at = pause_point(pcm) if at is None else at
    x = pcm.astype(np.float64)
    power = np.sort(_frame_power(x))
    quiet = power[:max(1, int(len(power) * BACKGROUND_SHARE))]
    gap = np.random.default_rng(seed).standard_normal(round(pause_s * RATE))
    return np.concatenate([pcm[:at], _int16(gap * np.sqrt(np.mean(quiet))), pcm[at:]])


def _frame_power(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean square of each whole 20 ms frame."""
    frames = x[:len(x) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    return np.asarray(np.mean(frames ** 2, axis=1))


def _active_power() -> float:
    return float((32768.0 * 10 ** (ACTIVE_DBFS / 20)) ** 2)


def _speech_power(x: NDArray[np.float64]) -> float:
    power = _frame_power(x)
    active = power[power > _active_power()]
    if not active.size:
        raise ValueError(f"no speech: no 20 ms frame is louder than {ACTIVE_DBFS:g} dBFS")
    return float(np.mean(active))


def _int16(x: NDArray[np.float64]) -> Pcm:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)
