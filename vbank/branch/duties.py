"""The hub's background duties: tasks it starts and does not await (sends, seals, watchdogs),
kept so that a stopping server waits for them, and failures are logged rather than lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger(__name__)


class Duties:
    """Tasks started by the hub and its parts; ``stop`` says the server is stopping."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()
        #: set when the server stops: wakes waits (a seal's retry) to give up
        self.stopping = asyncio.Event()

    @property
    def closing(self) -> bool:
        """The server is stopping: sockets closing are not drops, retries give up."""
        return self.stopping.is_set()

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    def stop(self) -> None:
        self.stopping.set()

    async def finish(self) -> None:
        """Wait for the duties running now (after ``stop``)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background duty failed", exc_info=task.exception())
