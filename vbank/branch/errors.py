"""The hub's refusals, as the WebSocket reports them."""

from __future__ import annotations

from vbank import VbankError


class BranchError(VbankError):
    """A request that cannot be served; ``code`` goes into the WebSocket error message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
