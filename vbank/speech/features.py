"""Whisper's log-mel spectrogram in numpy: the input of the recogniser and the end-of-turn model.

Both models (Whisper through CTranslate2, Smart Turn through ONNX Runtime) take 80 mel bands
of 16 kHz audio, 25 ms windows every 10 ms, log-compressed and scaled as Whisper's own
feature extractor does (``transformers.WhisperFeatureExtractor``, which this matches to
float precision; a unit test compares them). One batched FFT: ~5 ms for 10 s of audio.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from vbank.speech.audio import RATE, Pcm, resample

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80


def to_16k(pcm: Pcm) -> NDArray[np.float32]:
    """48 kHz int16 (the project's PCM) to 16 kHz float in [-1, 1]."""
    return (resample(pcm, RATE, SAMPLE_RATE).astype(np.float32) / 32768.0)


@cache
def _mel_filters() -> NDArray[np.float64]:
    """Slaney-scale, area-normalised triangular filters: (freq bins, mel bands)."""

    def hz_to_mel(f: NDArray[np.float64]) -> NDArray[np.float64]:
        mels = 3.0 * f / 200.0
        log = f >= 1000.0
        mels[log] = 15.0 + np.log(f[log] / 1000.0) * (27.0 / np.log(6.4))
        return mels

    def mel_to_hz(m: NDArray[np.float64]) -> NDArray[np.float64]:
        f = 200.0 * m / 3.0
        log = m >= 15.0
        f[log] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (m[log] - 15.0))
        return f

    edges = mel_to_hz(np.linspace(hz_to_mel(np.array([0.0]))[0],
                                  hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], N_MELS + 2))
    bins = np.linspace(0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    slopes = edges[None, :] - bins[:, None]
    widths = np.diff(edges)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic Hann, as torch.hann_window


def log_mel(audio: NDArray[np.float32], n_samples: int,
            normalize: bool = False) -> NDArray[np.float32]:
    """Features of ``audio`` (16 kHz float) zero-padded or cut to ``n_samples``:
    shape (80, n_samples // 160). ``normalize`` scales the waveform to zero mean and unit
    variance first (what Smart Turn was trained with; Whisper is not)."""
    x = np.zeros(n_samples, np.float32)
    x[:min(len(audio), n_samples)] = audio[:n_samples]
    if normalize:
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2
    mel = np.maximum(1e-10, power @ _mel_filters()).T[:, :-1]
    spec = np.log10(mel)
    spec = np.maximum(spec, spec.max() - 8.0)
    return ((spec + 4.0) / 4.0).astype(np.float32)
