"""Each ended call's evidence: its recordings stored as the media workers close them, then
the whole sealed (``Business.seal``), and the seal tried again until it holds. A call whose
seal keeps failing is an ALERT in the log and counted in ``/metrics``
(``vbank_unsealed_sessions``); a server stopping meanwhile seals it when it starts again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vbank.branch.duties import Duties
from vbank.branch.outbox import Outbox
from vbank.store import repo
from vbank.store.models import Recording

log = logging.getLogger(__name__)

#: waits between attempts to seal a call's evidence after one failed (the last repeats until
#: it is sealed; a server stopping meanwhile seals it when it starts again)
SEAL_RETRY_S = (2.0, 10.0, 60.0, 300.0)


class Sealer:
    """Stores recordings and seals ended calls, retrying failed seals in the background."""

    def __init__(self, db: async_sessionmaker[AsyncSession], data: Path,
                 seal: Callable[[str], Awaitable[dict[str, Any] | None]], outbox: Outbox,
                 duties: Duties) -> None:
        self.db = db
        self.data = data
        self._seal = seal
        self.outbox = outbox
        self.duties = duties
        #: ended calls whose evidence failed to seal: session id → failed attempts so far
        self.unsealed: dict[str, int] = {}
        self.failures = 0
        #: recordings being stored, per session: sealing waits for them
        self._storing: dict[str, set[asyncio.Future[Any]]] = {}

    def recording_closed(self, session_id: str, role: str, info: dict[str, Any]) -> None:
        """A media worker closed a leg's recording: store it (the seal waits for this)."""
        task = self.duties.spawn(self._store(session_id, role, info))
        storing = self._storing.setdefault(session_id, set())
        storing.add(task)
        task.add_done_callback(storing.discard)

    async def _store(self, session_id: str, role: str, info: dict[str, Any]) -> None:
        path = _relative_to(Path(info["path"]), self.data)
        async with self.db.begin() as db:
            await repo.add_recording(db, Recording(
                session_id=session_id, role=role, path=str(path), sha256=info["sha256"],
                bytes=info["bytes"], video_frames=info["video_frames"],
                audio_frames=info["audio_frames"], duration_s=info["duration_s"],
                started_at=datetime.fromtimestamp(info["started_at"], UTC)))

    async def seal_ended(self, session_id: str, tell: tuple[str | None, ...],
                         reference: str) -> None:
        """Seal an ended call's evidence once its recordings are stored; tell ``tell``.
        A seal that fails is tried again in the background until it succeeds."""
        pending = self._storing.pop(session_id, set())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if not await self._seal_once(session_id, tell, reference):
            self.duties.spawn(self.seal_until_done(session_id, tell, reference))

    async def seal_left_over(self, session_ids: list[str]) -> None:
        """Seal calls found unsealed at start; one that fails is retried in the background."""
        for session_id in session_ids:
            if not await self._seal_once(session_id, (), None):
                self.duties.spawn(self.seal_until_done(session_id))

    async def seal_until_done(self, session_id: str, tell: tuple[str | None, ...] = (),
                              reference: str | None = None) -> None:
        """Try sealing ``session_id`` again after each of ``SEAL_RETRY_S`` (the last
        repeating) until it is sealed or the server stops."""
        attempt = self.unsealed.get(session_id, 0)
        while session_id in self.unsealed or attempt == 0:
            wait = SEAL_RETRY_S[min(max(attempt - 1, 0), len(SEAL_RETRY_S) - 1)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.duties.stopping.wait(), wait if attempt else 0.0)
            if self.duties.closing:
                return
            if await self._seal_once(session_id, tell, reference):
                return
            attempt = self.unsealed[session_id]

    async def _seal_once(self, session_id: str, tell: tuple[str | None, ...],
                         reference: str | None) -> bool:
        """One attempt; False (logged as an ALERT, counted in ``unsealed``) if it failed."""
        try:
            sealed = await self._seal(session_id)
        except Exception:
            self.failures += 1
            attempts = self.unsealed[session_id] = self.unsealed.get(session_id, 0) + 1
            wait = SEAL_RETRY_S[min(attempts - 1, len(SEAL_RETRY_S) - 1)]
            log.exception("ALERT: the evidence of session %s is not sealed (attempt %d); "
                          "trying again in %.0f s", session_id, attempts, wait)
            return False
        self.unsealed.pop(session_id, None)
        if sealed is not None:
            sealed["reference"] = reference
            for username in tell:
                if username:
                    await self.outbox.send(username, sealed)
        return True


def _relative_to(path: Path, root: Path) -> Path:
    """A recording's path as stored: relative to the data directory when inside it."""
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return path
