"""PCM helpers: everything inside vbank speech is mono int16; WebRTC runs at 48 kHz."""

from __future__ import annotations

from math import gcd

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

RATE = 48000
#: one WebRTC audio frame: 20 ms at 48 kHz
FRAME_SAMPLES = 960

Pcm = NDArray[np.int16]


def resample(pcm: NDArray[np.generic], src: int, dst: int = RATE) -> Pcm:
    """Resample mono audio (int16 or float in [-1, 1]) to int16 at ``dst`` Hz."""
    data = pcm.astype(np.float32)
    if pcm.dtype == np.int16:
        data /= 32768.0
    if src != dst:
        g = gcd(src, dst)
        data = resample_poly(data, dst // g, src // g).astype(np.float32)
    return np.clip(data * 32767.0, -32768, 32767).astype(np.int16)


def frames_of(pcm: Pcm, size: int = FRAME_SAMPLES) -> list[Pcm]:
    """Split into fixed frames, the last one padded with silence."""
    if len(pcm) % size:
        pcm = np.concatenate([pcm, np.zeros(size - len(pcm) % size, np.int16)])
    return [pcm[i:i + size] for i in range(0, len(pcm), size)]


def rms_dbfs(pcm: Pcm) -> float:
    """Loudness of a frame in dB below full scale (-inf for digital silence)."""
    if not len(pcm):
        return float("-inf")
    rms = float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2)))
    return 20 * np.log10(rms / 32768.0) if rms > 0 else float("-inf")
