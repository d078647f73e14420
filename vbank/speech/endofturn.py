"""Has the customer finished their turn? A learned answer from the sound of the speech.

Silence alone cannot tell a finished question from a thinking pause ("I would like to ...
um ... open an account"); intonation and rhythm can. Smart Turn v3 (BSD-2, a Whisper-tiny
encoder with a classifier, ~8 MB int8, 23 languages including Chinese) reads the last 8 s of
the turn and says how likely it is complete. Its weights ship inside the ``pipecat-ai``
package (``pipecat/audio/turn/smart_turn/data/``), which the Makefile installs without its
dependencies: only the ONNX file is read, pipecat itself is never imported.
``VBANK_TURN_MODEL`` points at another Smart Turn ONNX file a user brings.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from vbank.speech import SpeechError, onnx_session, speech_threads
from vbank.speech.audio import Pcm
from vbank.speech.features import SAMPLE_RATE, log_mel, to_16k

#: the audio the model reads: the end of the turn, zero-padded at the start
WINDOW_S = 8.0
BUNDLED = "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"


def packaged_model_path() -> Path:
    configured = os.environ.get("VBANK_TURN_MODEL")
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec("pipecat")  # finds the folder, runs none of its code
    if spec is None or not spec.submodule_search_locations:
        raise SpeechError("the end-of-turn model ships in the package pipecat-ai "
                          "(`pip install --no-deps pipecat-ai`), or set VBANK_TURN_MODEL")
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED


class EndOfTurnModel:
    """Smart Turn v3 on ONNX Runtime, one session per process, safe across threads."""

    def __init__(self, path: Path | None = None) -> None:
        self._session = onnx_session(path or packaged_model_path(), "end-of-turn", speech_threads())
        self._input = self._session.get_inputs()[0].name
        self.last_s = 0.0  # how long the last decision took

    def probability(self, pcm: Pcm) -> float:
        """How likely the turn in ``pcm`` (48 kHz int16, its start to now) is complete."""
        started = time.monotonic()
        audio = to_16k(pcm)[-int(WINDOW_S * SAMPLE_RATE):]
        padded = np.zeros(int(WINDOW_S * SAMPLE_RATE), np.float32)
        padded[len(padded) - len(audio):] = audio
        features = log_mel(padded, len(padded), normalize=True)
        out: Any = self._session.run(None, {self._input: features[None]})
        self.last_s = time.monotonic() - started
        return float(np.asarray(out[0]).reshape(-1)[0])
