"""The bank's rules as plain Python: no sockets, no database, no clock of their own."""

from __future__ import annotations

from vbank import VbankError


class DomainError(VbankError):
    """A command the bank's rules refuse; the message is shown to the person who asked."""
