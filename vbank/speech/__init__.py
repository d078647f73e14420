"""Speech: recognition, synthesis and understanding, each engine behind one small interface."""

from __future__ import annotations

import os

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
