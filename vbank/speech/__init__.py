"""Speech: recognition, synthesis and understanding, each engine behind one small interface."""

from __future__ import annotations

from vbank import VbankError


class SpeechError(VbankError):
    """A speech engine that cannot load or run; the message names what to install."""
