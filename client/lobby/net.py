"""The seam between the hall and the network: asyncio in its own thread, a queue to Panda.

Only the main thread touches the scene graph. Network code (HTTP with httpx, the events
WebSocket, aiortc) runs as coroutines on ``NetLink``'s loop and reports with ``post``; a
Panda task drains the inbox once a frame and re-sends each message as the Panda event
``net-<type>``, which the app ``accept``s like a key press.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any

Message = dict[str, Any]
#: messages handed to Panda per frame at most, so a burst cannot stall a frame
DRAIN_PER_FRAME = 100


class NetLink:
    """An asyncio loop on a daemon thread, and the inbox it fills."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="vbank-net",
                                        daemon=True)

    def start(self) -> NetLink:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        """Run a coroutine on the network loop (from the main thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def post(self, kind: str, **payload: Any) -> None:
        """Report something to the main thread (from any thread)."""
        self.inbox.put({"type": kind, **payload})

    def put(self, message: Message) -> None:
        """Hand a message that already has its ``type`` (a server's) to the main thread."""
        self.inbox.put(message)

    def drain(self, deliver: Callable[[str, Message], None], limit: int = DRAIN_PER_FRAME
              ) -> int:
        """Hand up to ``limit`` waiting messages to ``deliver(event, message)``."""
        for count in range(limit):
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return count
            deliver(f"net-{message['type']}", message)
        return limit

    def attach(self, base: Any) -> None:
        """Drain into ``base.messenger`` every frame, before the frame's other tasks."""
        def poll(task: Any) -> Any:
            self.drain(lambda event, message: base.messenger.send(event, [message]))
            return task.cont

        base.taskMgr.add(poll, "net-poll", sort=-10)
