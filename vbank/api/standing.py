"""Whether a token's login still stands, asked of the database at most once per login every
``VBANK_AUTH_CACHE_S``: each request checks, few reach the database.

A change made on this node (a logout, an administrator's sign-out) counts at once here; one
made on another node or straight in the database counts here within the cache time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vbank.auth import Principal, Standing, check_standing
from vbank.config import Settings
from vbank.store import logins

#: how a standing is read: (username, login id) → what the database says now
Load = Callable[[str, str], Awaitable[Standing]]


class Standings:
    """A node's short memory of what the database said of each login."""

    #: logins remembered at most; emptied when full (a few requests then read again)
    MAX = 4096

    def __init__(self, load: Load, cache_s: float, max_login_s: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self.cache_s = cache_s
        self.max_login_s = max_login_s
        self._clock = clock
        #: (username, login id) → (standing, when it was read, on ``clock``)
        self._known: dict[tuple[str, str], tuple[Standing, float]] = {}

    async def check(self, principal: Principal) -> None:
        """``AuthError`` unless the token's login still stands."""
        key = (principal.username, principal.login_id)
        known = self._known.get(key)
        if known is None or self._clock() - known[1] >= self.cache_s:
            read_at = self._clock()
            known = (await self._load(*key), read_at)
            if len(self._known) >= self.MAX:
                self._known.clear()
            self._known[key] = known
        check_standing(principal, known[0], self.max_login_s)

    def forget(self, username: str) -> None:
        """Read the user's logins again at their next use (they changed here)."""
        for key in [k for k in self._known if k[0] == username]:
            del self._known[key]


def standings_of(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> Standings:
    """The node's ``Standings``, reading the database through ``sessions``."""
    async def load(username: str, login_id: str) -> Standing:
        async with sessions() as db:
            return await logins.standing(db, username, login_id)

    return Standings(load, settings.auth_cache_s, settings.login_max_s)
