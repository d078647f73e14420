"""WebRTC media: both peers of a call terminate here; media is relayed and recorded as is."""

from __future__ import annotations

from vbank import VbankError


class RtcError(VbankError):
    """A media operation that failed; ``code`` is what the signaling edge reports."""

    code = "media_error"


class BadSdp(RtcError):
    code = "bad_sdp"


class AdmissionRefused(RtcError):
    code = "busy"
