"""Speech: recognition, synthesis and understanding, each engine behind one small interface."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vbank import VbankError


def speech_threads() -> int:
    """Threads each model may use per process (``VBANK_SPEECH_THREADS``, default 1).

    A media worker serves many sessions at once; models that spread one request over every
    core (torch and ONNX Runtime do by default, and ONNX Runtime spins its idle threads)
    steal the cores the other sessions' audio and video need.
    """
    try:
        return max(1, int(os.environ.get("VBANK_SPEECH_THREADS", "1")))
    except ValueError:
        return 1


class SpeechError(VbankError):
    """A speech engine that cannot load or run; the message names what to install."""


def onnx_session(path: Path, what: str, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session for a model file, on ``threads`` threads that sleep when
    idle (spinning threads would steal the cores other sessions' media needs)."""
    import onnxruntime as ort

    if not path.is_file():
        raise SpeechError(f"no {what} model at {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options,
                                providers=["CPUExecutionProvider"])
