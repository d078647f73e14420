"""Storage: SQLAlchemy 2 models, Alembic migrations and the repositories the services use."""

from __future__ import annotations

from vbank import VbankError


class StoreError(VbankError):
    """A storage operation refused (duplicate user, unknown record, ...)."""
