"""The 3D client's call media with its echo canceller, over real aiortc peers: the far side
talks, the client plays it on a speaker (ALSA's null device) while a simulated room brings
it back into the "microphone", and what reaches the far side has the echo taken out."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from client.lobby import call as lobby_call
from client.lobby.call import CallMedia
from client.lobby.net import NetLink
from vbank.speech.tracks import SpeechTrack
from vbank.speech.tts import EspeakSynthesizer

#: the room: the echo comes back this much later than the audio arrived, this much weaker
ROOM_DELAY_S, ROOM_GAIN = 0.08, 0.5
FAR_TEXT = ("Welcome to the branch. I am the digital teller, and I can help you with opening "
            "hours, fees, loans and your points. Please have your identity card ready, and "
            "ask me to repeat anything at any time.")


class RoomMicrophone(MediaStreamTrack):
    """A microphone in the room with the client's speaker: it hears, ROOM_DELAY_S after it
    arrived, what the call received (the speaker plays exactly that), at ROOM_GAIN."""

    kind = "audio"

    def __init__(self, call: CallMedia) -> None:
        super().__init__()
        self._call = call
        self._heard = np.zeros(0, np.int16)  # everything received, in order
        self._taken = 0  # received frames already added to _heard
        self._start: float | None = None  # when the microphone's first sample was heard
        self._shift: int | None = None  # _heard's index of the microphone's sample 0
        self._count = 0
        self.levels: list[tuple[float, float]] = []  # (time, energy) of each frame made

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + (self._count + 1) * 0.02
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        received = list(self._call.audio)[self._taken:]
        if received:
            if self._shift is None:  # the speaker starts playing the first frame it gets
                first_at = received[0][0]
                self._shift = -round((first_at + ROOM_DELAY_S - self._start) * 48000)
            self._heard = np.concatenate([self._heard, *[pcm for _, pcm in received]])
            self._taken += len(received)
        pcm = np.zeros(960, np.float32)
        if self._shift is not None:  # what the speaker played ROOM_DELAY_S ago, if it had it
            wanted = np.arange(960) + self._count * 960 + self._shift
            there = (wanted >= 0) & (wanted < len(self._heard))
            pcm[there] = self._heard[wanted[there]] * ROOM_GAIN
        frame = av.AudioFrame.from_ndarray(pcm.astype(np.int16)[None, :], format="s16",
                                           layout="mono")
        frame.sample_rate, frame.pts = 48000, self._count * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self._count += 1
        self.levels.append((time.monotonic(), float(np.mean(pcm ** 2))))
        return frame


async def record(track: MediaStreamTrack, levels: list[tuple[float, float]]) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame: Any = await track.recv()
            pcm = frame.to_ndarray().reshape(-1).astype(np.float32)
            levels.append((time.monotonic(), float(np.mean(pcm ** 2))))


def db_between(levels: list[tuple[float, float]], start: float, end: float) -> float:
    inside = [e for t, e in levels if start <= t < end]
    return float(10 * np.log10(np.mean(inside) + 1e-9))


async def test_what_the_speaker_plays_is_cancelled_out_of_what_the_microphone_sends(
        monkeypatch: pytest.MonkeyPatch) -> None:
    far = EspeakSynthesizer("en").synthesize(FAR_TEXT)
    voice = SpeechTrack()
    branch = RTCPeerConnection()
    branch.addTrack(voice)
    received: list[tuple[float, float]] = []
    tasks: list[asyncio.Task[None]] = []
    branch.on("track", lambda track: track.kind == "audio" and tasks.append(
        asyncio.ensure_future(record(track, received))))
    net = NetLink()
    call: CallMedia

    async def send(message: dict[str, Any]) -> None:  # the branch answers the offer
        await branch.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
        await branch.setLocalDescription(await branch.createAnswer())
        call.on_answer({"session_id": message["session_id"],
                        "sdp": branch.localDescription.sdp})

    rooms: list[RoomMicrophone] = []

    def open_room(device: str) -> tuple[MediaStreamTrack, str]:
        rooms.append(RoomMicrophone(call))
        return rooms[0], device

    monkeypatch.setattr(lobby_call, "open_microphone", open_room)
    call = CallMedia(net, send, "Alice", microphone="room:here", speaker="alsa:null")
    try:
        await call.start("s_1")
        assert call.connected and call.echo is not None, net.inbox.queue
        assert call.speaker == "alsa:null"  # the reference is what ALSA was handed
        voice.play(far)
        talked = time.monotonic()
        await asyncio.sleep(len(far) / 48000 + 0.5)
        spoken = len(far) / 48000
        learning, learnt = (talked, talked + 4.0), (talked + 4.0, talked + spoken - 0.5)
        echo_db = db_between(rooms[0].levels, *learnt)
        assert echo_db > 50  # the room did echo the far side (about -35 dBFS)
        # measured: about 47 dB, turned down while learning and cancelled once learnt
        for window in learning, learnt:
            assert db_between(rooms[0].levels, *window) - db_between(received, *window) > 25
        assert call.echo.learnt
        state = [m for m in list(net.inbox.queue) if m.get("state") == "connected"]
        assert state and state[0]["echo_cancelled"] is True
    finally:
        await call.close()
        await branch.close()
        voice.stop()
        for task in tasks:
            task.cancel()
