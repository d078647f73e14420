"""vbank: a virtual bank branch — video tellers over WebRTC, queued, recorded."""

from __future__ import annotations

__version__ = "0.1.0"


class VbankError(Exception):
    """Base of every error vbank raises on purpose; each package derives its own family."""
