"""The customer's side of a call from the hall: a WebRTC peer on the network thread.

When the branch pairs the customer (``paired``, or a ``welcome`` that finds them already in a
call) the link starts a ``CallMedia``: it offers the microphone when there is one — a silent
track otherwise, or the voice a scenario gives it — and a synthetic camera (the customer's
name on a card, with a clock so that the far side sees it is live), sends the offer over the
signaling socket and applies the branch's ``answer``. What comes back is decoded on the
network thread: the newest video frame waits, BGR, in a ``FrameSlot`` that the render loop
takes from once a frame (older frames are dropped: a screen shows the latest picture), and
the audio goes to the speaker (ALSA's default device, through PyAV) when there is one and is
kept for listeners such as the scenario runner. With both a microphone and a speaker, what
the speaker plays is cancelled out of what the microphone sends (``client.lobby.echo``): a
customer on loudspeakers must not make the digital human hear, and interrupt, itself.

The link reports ``call_media {state, session_id, reason?}`` (``connecting``, ``connected``
with the ``microphone`` and whether its echo is cancelled, ``failed``, ``closed``) through
the inbox like every other message.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import av
import cv2
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRecorder, MediaRelay
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from client.lobby import LinkError
from client.lobby.echo import EchoFreeMicrophone, SpeakerFeed, echo_canceller
from client.lobby.net import NetLink
from vbank.rtc.ice import rtc_configuration
from vbank.speech.echo import EchoCanceller

log = logging.getLogger(__name__)

#: the synthetic camera's picture and rate
CAMERA_SIZE, CAMERA_FPS = (320, 240), 15
#: seconds the branch has to answer an offer
ANSWER_TIMEOUT_S = 15.0
#: received audio kept for listeners (mono 48 kHz frames of 20 ms: one minute)
KEEP_AUDIO_FRAMES = 60 * 50
#: the microphone and speaker used when none is named: ALSA's default device (PyAV's FFmpeg
#: has ALSA input and output; with PulseAudio or PipeWire, ALSA's default goes to them)
DEFAULT_DEVICE = "alsa:default"

#: where Debian keeps ALSA's configuration. PyAV's wheels bundle an alsa-lib built to look
#: under its build prefix; without this it finds no configuration and no device at all.
ALSA_CONFIG_DIR = "/usr/share/alsa"
if "ALSA_CONFIG_DIR" not in os.environ and os.path.isfile(f"{ALSA_CONFIG_DIR}/alsa.conf"):
    os.environ["ALSA_CONFIG_DIR"] = ALSA_CONFIG_DIR

Send = Callable[[dict[str, Any]], Awaitable[None]]


class FrameSlot:
    """The newest remote video frame, from the network thread to the render loop: a queue
    of one, where a new frame replaces the one not yet shown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self.received = 0  # frames decoded since the client started
        self.size: tuple[int, int] | None = None  # (width, height) of the latest

    def put(self, bgr: np.ndarray) -> None:
        with self._lock:
            self._frame = bgr
            self.received += 1
            self.size = (bgr.shape[1], bgr.shape[0])

    def take(self) -> np.ndarray | None:
        """The frame that arrived since the last take, or None."""
        with self._lock:
            frame, self._frame = self._frame, None
        return frame


class SyntheticCamera(MediaStreamTrack):
    """What the customer's camera would show when there is none: a card with their name and
    a running clock, so a teller sees a live picture and not a frozen one."""

    kind = "video"

    def __init__(self, name: str, size: tuple[int, int] = CAMERA_SIZE,
                 fps: int = CAMERA_FPS) -> None:
        super().__init__()
        self.fps = fps
        w, h = size
        yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        top, bottom = np.array([150, 110, 60], np.float32), np.array([90, 60, 30], np.float32)
        card = np.broadcast_to(top + (bottom - top) * yy, (h, w, 3)).astype(np.uint8).copy()
        cv2.circle(card, (w // 2, int(h * 0.38)), int(h * 0.16), (170, 200, 235), -1, cv2.LINE_AA)
        cv2.ellipse(card, (w // 2, int(h * 0.86)), (int(w * 0.22), int(h * 0.22)), 0, 180, 360,
                    (60, 40, 25), -1, cv2.LINE_AA)
        text = name.encode("ascii", "replace").decode()  # Hershey fonts draw ASCII only
        cv2.putText(card, text[:24], (10, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (255, 255, 255), 1, cv2.LINE_AA)
        self._card = card
        self._held: np.ndarray | None = None  # a picture held up to the camera instead
        self._start: float | None = None
        self._count = 0

    def hold(self, picture: np.ndarray | None) -> None:
        """Show ``picture`` (BGR, the camera's size) from the next frame on, e.g. one's ID
        card held up beside one's face; None puts it down."""
        if picture is not None and picture.shape[:2] != self._card.shape[:2]:
            raise ValueError(f"the picture is {picture.shape[1]}x{picture.shape[0]}, the "
                             f"camera {self._card.shape[1]}x{self._card.shape[0]}")
        self._held = picture

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        held = self._held
        image = (held if held is not None else self._card).copy()
        cv2.putText(image, time.strftime("%H:%M:%S"), (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (255, 255, 255), 1, cv2.LINE_AA)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = self._count * (90000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self._count += 1
        return frame


def audio_device(device: str) -> tuple[str, str] | None:
    """``FORMAT:NAME`` (``alsa:default``, ``alsa:hw:1``) as PyAV's (name, format); ``none``
    as None."""
    if device == "none":
        return None
    fmt, _, name = device.partition(":")
    if not fmt or not name:
        raise LinkError(f"audio device {device!r}: give FORMAT:DEVICE (alsa:default) or none")
    return name, fmt


def open_microphone(device: str) -> tuple[MediaStreamTrack | None, str]:
    """The microphone's audio track and where it came from, or (None, why not)."""
    where = audio_device(device)
    if where is None:
        return None, "no microphone asked for"
    try:
        player = MediaPlayer(where[0], format=where[1])
    except Exception as exc:  # av raises several kinds for an absent device
        return None, f"{device}: {exc}"
    if player.audio is None:
        return None, f"{device} has no audio"
    return player.audio, device


class CallMedia:
    """One customer's media for the call they are in (at most one at a time)."""

    def __init__(self, net: NetLink, send: Send, name: str, *,
                 voice: Callable[[], MediaStreamTrack] | None = None,
                 microphone: str = DEFAULT_DEVICE, speaker: str = DEFAULT_DEVICE) -> None:
        self.net = net
        self._send = send
        self.name = name
        #: makes the track to send as the customer's voice (a scenario's speech); without it
        #: the microphone, or silence
        self._voice = voice
        self._microphone = microphone
        self._speaker = audio_device(speaker)
        self._player: MediaRecorder | None = None  # plays the far side's voice
        self.speaker = ""  # where it plays, or why it does not
        self.frames = FrameSlot()
        #: (arrival time, mono int16 48 kHz) of the audio received, the last minute of it
        self.audio: deque[tuple[float, np.ndarray]] = deque(maxlen=KEEP_AUDIO_FRAMES)
        self.session_id: str | None = None
        self.pc: RTCPeerConnection | None = None
        self.voice: MediaStreamTrack | None = None  # the track sending the customer's voice
        self.camera: SyntheticCamera | None = None
        self.microphone = ""  # where the voice comes from, for the status line
        #: takes the speaker's sound out of the microphone's (a real microphone and speaker)
        self.echo: EchoCanceller | None = None
        self._answer: asyncio.Future[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> bool:
        return self.pc is not None and self.pc.connectionState == "connected"

    def carries(self, session_id: str) -> bool:
        """Whether media for ``session_id`` is up or on its way."""
        return self.session_id == session_id and self.pc is not None and \
            self.pc.connectionState not in ("failed", "closed")

    async def start(self, session_id: str) -> None:
        """Offer media for ``session_id``, replacing any earlier call's."""
        await self.close(report=False)
        self.session_id = session_id
        self.net.post("call_media", state="connecting", session_id=session_id)
        try:
            await self._connect(session_id)
        except (LinkError, TimeoutError, OSError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("media for %s failed: %s", session_id, reason)
            self.net.post("call_media", state="failed", session_id=session_id, reason=reason)
            await self.close(report=False)

    async def _connect(self, session_id: str) -> None:
        pc = self.pc = RTCPeerConnection(rtc_configuration([]))
        pc.on("track", self._consume)
        if self._voice is not None:
            self.voice, self.microphone = self._voice(), "the scenario's voice"
        else:
            self.voice, self.microphone = await asyncio.to_thread(open_microphone,
                                                                  self._microphone)
            if self.voice is None:
                log.info("no microphone (%s): sending silence", self.microphone)
                self.voice, self.microphone = AudioStreamTrack(), "silence (no microphone)"
            elif self._speaker is not None:
                self.echo = echo_canceller()
                if self.echo is not None:
                    self.voice = EchoFreeMicrophone(self.voice, self.echo)
                    log.info("the microphone's echo of the speaker is cancelled (speexdsp, "
                             "%d Hz)", self.echo.rate)
        pc.addTrack(self.voice)  # audio first, then video, as the browser page orders them
        self.camera = SyntheticCamera(self.name)
        pc.addTrack(self.camera)
        await pc.setLocalDescription(await pc.createOffer())
        self._answer = asyncio.get_running_loop().create_future()
        await self._send({"type": "offer", "session_id": session_id,
                          "sdp": pc.localDescription.sdp})
        try:
            sdp = await asyncio.wait_for(self._answer, ANSWER_TIMEOUT_S)
        except TimeoutError as exc:
            raise LinkError(f"the branch did not answer the call's offer within "
                            f"{ANSWER_TIMEOUT_S:g} s") from exc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while pc.connectionState != "connected":
            if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
                raise LinkError(f"the call's media did not connect ({pc.connectionState})")
            await asyncio.sleep(0.05)
        self.net.post("call_media", state="connected", session_id=session_id,
                      microphone=self.microphone, echo_cancelled=self.echo is not None)

    def on_answer(self, message: dict[str, Any]) -> None:
        """The branch's ``answer`` to our offer (on the network loop)."""
        if self._answer is not None and not self._answer.done() and \
                message.get("session_id") == self.session_id and \
                isinstance(message.get("sdp"), str):
            self._answer.set_result(message["sdp"])

    def on_error(self, message: dict[str, Any]) -> None:
        """A signaling error while an offer waits: the offer was refused."""
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(LinkError(
                f"the branch refused the call's offer: {message.get('message') or message}"))

    def _consume(self, track: MediaStreamTrack) -> None:
        loop = asyncio.get_running_loop()
        if track.kind == "audio" and self._speaker is not None:
            relay = MediaRelay()  # one copy to the speaker, one to the listeners
            self._tasks.append(loop.create_task(self._play(relay.subscribe(track))))
            track = relay.subscribe(track)
        self._tasks.append(loop.create_task(self._receive(track)))

    async def _play(self, track: MediaStreamTrack) -> None:
        assert self._speaker is not None
        name, fmt = self._speaker
        try:
            self._player = MediaRecorder(name, format=fmt)
            self._player.addTrack(track if self.echo is None else SpeakerFeed(track, self.echo))
            await self._player.start()
            self.speaker = f"{fmt}:{name}"
        except Exception as exc:  # no sound card: the call goes on with captions only
            self._player = None
            self.speaker = f"no speaker ({fmt}:{name}: {exc})"
            log.info("the far side's voice cannot be played: %s", exc)
            with contextlib.suppress(MediaStreamError):
                while True:
                    await track.recv()  # keep the relay's copy flowing

    async def _receive(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                item: Any = await track.recv()
                if isinstance(item, av.VideoFrame):
                    self.frames.put(item.to_ndarray(format="bgr24"))
                elif isinstance(item, av.AudioFrame):
                    samples = item.to_ndarray().reshape(-1)
                    if len(item.layout.channels) == 2:  # packed stereo: average the pair
                        samples = samples.reshape(-1, 2).mean(axis=1).astype(np.int16)
                    self.audio.append((time.monotonic(), samples))

    async def close(self, report: bool = True) -> None:
        """Hang up this side's media (the call itself ends by signaling)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        player, self._player = self._player, None
        if player is not None:
            with contextlib.suppress(Exception):
                await player.stop()
        pc, self.pc = self.pc, None
        if pc is not None:
            await pc.close()
        if self.voice is not None:
            self.voice.stop()
            self.voice = None
        self.echo = None
        if report and self.session_id is not None:
            self.net.post("call_media", state="closed", session_id=self.session_id)
        self.session_id = None
