"""Voice activity: how likely each moment of a caller's audio is speech (Silero VAD).

An energy threshold cannot tell a voice from a fan, a keyboard or a cough: a neural VAD can.
Silero VAD (MIT; its ONNX weights ship inside the ``silero-vad`` package) scores 32 ms of
16 kHz audio in well under a millisecond on one thread. One ONNX session per process is
shared by every stream; each stream (:class:`VoiceActivity`) keeps its own recurrent state.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import firwin, lfilter, lfilter_zi

from vbank.speech import SpeechError, onnx_session
from vbank.speech.audio import Pcm

#: samples Silero scores at a time at 16 kHz (32 ms), and the context it carries over
CHUNK = 512
CONTEXT = 64
#: 48 kHz → 16 kHz: a low-pass FIR then every third sample, with state across frames
_DECIMATE = 3
_TAPS = firwin(48, 7200, fs=48000).astype(np.float32)


def packaged_model_path() -> Path:
    configured = os.environ.get("VBANK_VAD_MODEL")
    if configured:
        return Path(configured)
    try:
        import silero_vad
    except ImportError as exc:
        raise SpeechError("voice activity needs the package silero-vad") from exc
    return Path(silero_vad.__file__).parent / "data" / "silero_vad.onnx"


class SileroModel:
    """The ONNX session; ``run`` is safe from several threads (ONNX Runtime's own rule)."""

    def __init__(self, path: Path | None = None) -> None:
        self._session = onnx_session(path or packaged_model_path(), "Silero VAD", 1)
        self._sr = np.array(16000, dtype=np.int64)

    def run(self, chunk: NDArray[np.float32],
            state: NDArray[np.float32]) -> tuple[float, NDArray[np.float32]]:
        out: Any = self._session.run(None, {"input": chunk[None, :], "state": state,
                                            "sr": self._sr})
        return float(out[0][0, 0]), out[1]


_lock = threading.Lock()


@cache
def _shared(path: str) -> SileroModel:
    return SileroModel(Path(path))


def shared_model() -> SileroModel:
    """The process's Silero session, loaded on first use (~20 ms)."""
    with _lock:
        return _shared(str(packaged_model_path()))


class VoiceActivity:
    """Speech probability of one stream of 48 kHz int16 frames (any frame size)."""

    def __init__(self, model: SileroModel | None = None) -> None:
        self._model = model or shared_model()
        self._zi = lfilter_zi(_TAPS, [1.0]).astype(np.float32) * 0.0
        self._phase = 0  # where the next kept sample falls in the next frame
        self._pending = np.zeros(0, np.float32)  # 16 kHz samples not yet scored
        self._context = np.zeros(CONTEXT, np.float32)
        self._state = np.zeros((2, 1, 128), np.float32)
        #: the latest chunk's probability (it holds until the next chunk is scored)
        self.probability = 0.0

    def feed(self, frame: Pcm) -> float:
        """Score what ``frame`` completes; returns the probability now in force."""
        x = frame.astype(np.float32) / 32768.0
        filtered, self._zi = lfilter(_TAPS, [1.0], x, zi=self._zi)
        kept = filtered[self._phase::_DECIMATE]
        self._phase = (self._phase - len(x)) % _DECIMATE
        self._pending = np.concatenate([self._pending, kept.astype(np.float32)])
        while len(self._pending) >= CHUNK:
            chunk, self._pending = self._pending[:CHUNK], self._pending[CHUNK:]
            block = np.concatenate([self._context, chunk])
            self.probability, self._state = self._model.run(block, self._state)
            self._context = chunk[-CONTEXT:]
        return self.probability

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)
        self.probability = 0.0
