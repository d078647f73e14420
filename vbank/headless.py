"""A headless customer or teller: HTTP login, the signaling WebSocket, a WebRTC peer.

What a browser page does, in Python, for the integration tests, the benchmarks and the
scenario runner. Messages received are kept in order; ``expect`` waits for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import websockets
from aiortc.mediastreams import MediaStreamTrack

from vbank.rtc.peer import HeadlessPeer, PreEncodedVideoTrack


class Camera(PreEncodedVideoTrack):
    """A headless participant's camera: looped VP8 frames that can be switched mid-call.

    Switching changes what the same track sends, so nothing is renegotiated and the RTP
    timeline runs on; the receiver sees a new keyframe, as when a person's camera image
    changes. A pre-encoded loop cannot answer a keyframe request: receivers wait for the
    loop's own keyframe.
    """

    def __init__(self, frames: list[bytes], fps: int = 15) -> None:
        super().__init__(frames, fps)
        #: what the camera shows when nothing else is held up to it
        self.own = frames

    def show(self, frames: list[bytes] | None) -> None:
        """Send ``frames`` (looped; the first a keyframe, the size unchanged) from the next
        frame on; None goes back to the camera's own frames."""
        self._frames = frames if frames is not None else self.own
        self._i = 0


class Participant:
    """One signed-in person with a signaling connection and, in a call, a peer."""

    def __init__(self, server: str, username: str, password: str | None = None) -> None:
        self.server = server.rstrip("/")
        self.username = username
        self.password = password or username
        self.token = ""
        self.ws: Any = None
        self.messages: list[dict[str, Any]] = []
        self.peer: HeadlessPeer | None = None
        self.camera: Camera | None = None
        self.session_id: str | None = None
        #: called with each message as it arrives (after it is kept)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def login(self) -> str:
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(f"{self.server}/api/v1/auth/login",
                                json={"username": self.username, "password": self.password})
            r.raise_for_status()
            self.token = str(r.json()["access_token"])
        return self.token

    async def connect(self) -> dict[str, Any]:
        """Open the WebSocket and authenticate; returns the welcome message."""
        if not self.token:
            await self.login()
        url = "ws" + self.server[len("http"):] + "/ws"
        self.ws = await websockets.connect(url, max_size=None)
        await self.ws.send(json.dumps({"type": "auth", "token": self.token}))
        self._reader = asyncio.ensure_future(self._read())
        return await self.expect("welcome")

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in self.ws:
                message = json.loads(text)
                self.messages.append(message)
                self._arrived.set()
                for listener in self.listeners:
                    listener(message)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def expect(self, kind: str, timeout: float = 15, after: int = 0,
                     where: Callable[[dict[str, Any]], bool] | None = None,
                     **fields: Any) -> dict[str, Any]:
        """The first message of type ``kind`` (from index ``after``) matching ``fields``
        and, if given, the predicate ``where``."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages[after:]:
                if message.get("type") == kind and all(
                        message.get(k) == v for k, v in fields.items()) and (
                        where is None or where(message)):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.username}: no {kind} {fields or ''}; last: {self.messages[-3:]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def start_media(self, session_id: str, video_frames: list[bytes] | None,
                          fps: int = 15, voice: MediaStreamTrack | None = None) -> HeadlessPeer:
        """Offer media for ``session_id`` (replacing any earlier peer) and wait until connected."""
        if self.peer is not None:
            await self.peer.close()
        self.session_id = session_id
        self.peer = HeadlessPeer(None, fps, voice=voice)
        self.camera = Camera(video_frames, fps) if video_frames is not None else None
        if self.camera is not None:
            self.peer.pc.addTrack(self.camera)  # after the audio, as HeadlessPeer orders them
        mark = len(self.messages)
        await self.send({"type": "offer", "session_id": session_id,
                         "sdp": await self.peer.offer()})
        answer = await self.expect("answer", after=mark, session_id=session_id)
        await self.peer.accept(answer["sdp"])
        await self.peer.wait_connected()
        return self.peer

    def show_frames(self, frames: list[bytes] | None) -> None:
        """Switch the camera to ``frames`` mid-call without renegotiating, e.g. to hold up an
        ID card (``vbank.avatar.idcard.id_camera_frames``); None switches back."""
        if self.camera is None:
            raise RuntimeError(f"{self.username} has no camera: start_media with video first")
        self.camera.show(frames)

    async def close(self) -> None:
        """Leave without goodbye: the socket and the peer simply go away."""
        if self.peer is not None:
            await self.peer.close()
            self.peer = None
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
