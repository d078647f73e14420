"""The people in a scenario: headless customers and tellers with a voice, eyes and ears.

An actor is a signed-in :class:`~vbank.headless.Participant` that behaves like the browser
page: when paired it opens its WebRTC media (a synthetic camera and a voice track that is
silent until it speaks), after a reconnect it resumes its session, and it keeps every
message it received, across connections, for the expectations to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vbank.headless import Participant
from vbank.speech.audio import RATE, Pcm
from vbank.speech.conditions import read_wav, speech_span
from vbank.speech.tracks import SpeechTrack, drain
from vbank.speech.tts import Synthesizer

log = logging.getLogger(__name__)

#: received audio louder than this is the other side speaking
LOUD_DBFS = -40.0
#: how long the runner waits for a reply before a turn has no voice-to-voice latency
REPLY_WAIT_S = 15.0


class StepFailed(Exception):
    """A step did not do what it should; the message says what was expected."""


@dataclass
class Turn:
    """One thing a customer said, and how long until the first reply audio arrived."""

    step: int
    text: str
    spoken_end: float  # monotonic: the last frame of speech left
    latency_s: float | None = None


class Actor:
    """One customer or teller of a scenario."""

    #: the scenario's language: a 3D customer joins in it (a video one's join says it)
    language: str = "en"

    def __init__(self, key: str, spec: dict[str, Any], server: str, username: str,
                 password: str, video: list[bytes], voice: Synthesizer) -> None:
        self.key = key
        self.spec = spec
        self.kind = str(spec["kind"])
        self.server = server
        self.username = username
        self.password = password
        self._video = video
        self._tts = voice
        self.participant: Participant | None = None
        self.voice = SpeechTrack()
        #: every message received, over every connection, with its arrival time in ``_at``
        self.log: list[dict[str, Any]] = []
        self.paired_role: str | None = None
        self.position: int | None = None
        self.session_id: str | None = None
        self.last_session_id: str | None = None
        #: read positions in ``log`` per expectation, so one message satisfies one expect
        self.cursors: dict[str, int] = {}
        #: ``heard`` listens to audio received after this (monotonic) time
        self.heard_from = 0.0
        self.turns: list[Turn] = []
        self.problems: list[str] = []
        self._media: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ connection
    async def connect(self) -> None:
        p = Participant(self.server, self.username, self.password)
        p.listeners.append(self._on_message)
        self.participant = p
        await p.connect()

    async def drop(self) -> None:
        """Vanish without goodbye: socket and peer connection simply go away."""
        if self.participant is not None:
            await self.participant.close()
            self.participant = None
        if self._media is not None:
            self._media.cancel()
            self._media = None

    async def send(self, message: dict[str, Any]) -> None:
        if self.participant is None:
            raise StepFailed(f"{self.key} is not connected (dropped?)")
        await self.participant.send(message)

    async def wait_for(self, kinds: tuple[str, ...], after: int, timeout: float,
                       **fields: Any) -> dict[str, Any]:
        """The first message of one of ``kinds`` received after log index ``after``."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.log[after:]:
                if message.get("type") in kinds and all(
                        message.get(k) == v for k, v in fields.items()):
                    return message
            if time.monotonic() > deadline:
                raise StepFailed(f"no {' or '.join(kinds)} within {timeout:g} s")
            await asyncio.sleep(0.05)

    def _on_message(self, message: dict[str, Any]) -> None:
        self.log.append({**message, "_at": time.monotonic()})
        kind = message.get("type")
        if kind == "paired":
            self.paired_role = (message.get("peer") or {}).get("role")
            self._in_session(str(message["session_id"]))
            self.position = None
            self._open_media(str(message["session_id"]))
        elif kind in ("queued", "queue", "requeued"):
            self._in_session(str(message["session_id"]))
            self.position = message.get("position")
            if kind == "requeued":
                self.paired_role = None
        elif kind == "handed_over":
            self.paired_role = None
        elif kind == "ended":
            self.paired_role, self.position, self.session_id = None, None, None
        elif kind == "welcome" and message.get("session"):
            session = message["session"]
            self._in_session(str(session["session_id"]))
            if session.get("state") == "queued":
                self.position = session.get("position")
            elif session.get("state") == "in_call":
                peer = session.get("peer") or {}
                self.paired_role = peer.get("role") or (
                    "teller" if session.get("teller") else "digital_human")
                self._open_media(str(session["session_id"]))

    @property
    def connected(self) -> bool:
        return self.participant is not None

    def _in_session(self, session_id: str) -> None:
        self.session_id = self.last_session_id = session_id

    # ----------------------------------------------------------------- media
    def _open_media(self, session_id: str) -> None:
        """Start (or keep) this actor's WebRTC media for ``session_id``."""
        p = self.participant
        if p is None:
            return
        if p.peer is not None and p.session_id == session_id and \
                p.peer.pc.connectionState not in ("failed", "closed"):
            return  # the same call with another peer on the far side: media carries on
        if self._media is not None and not self._media.done():
            self._media.cancel()
        self._media = asyncio.ensure_future(self._start_media(p, session_id))

    async def _start_media(self, p: Participant, session_id: str) -> None:
        self.voice.stop()
        self.voice = SpeechTrack()  # a track feeds one connection
        try:
            await p.start_media(session_id, self._video, voice=self.voice)
        except Exception as exc:  # reported with the next step that needs the media
            self.problems.append(f"media for {session_id} failed: {exc}")
            log.warning("%s: media for %s failed: %s", self.key, session_id, exc)

    async def media_ready(self, timeout: float = 15) -> Any:
        """The connected peer of the current call."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.participant
            if p is not None and p.peer is not None and \
                    p.peer.pc.connectionState == "connected":
                return p.peer
            if time.monotonic() > deadline:
                why = "; ".join(self.problems[-1:]) or "no call is connected"
                raise StepFailed(f"{self.key} has no media: {why}")
            await asyncio.sleep(0.05)

    @property
    def received_audio(self) -> list[tuple[float, Pcm]]:
        p = self.participant
        if p is None or p.peer is None:
            return []
        return [(at, pcm) for at, pcm in list(p.peer.reception.audio) if at >= self.heard_from]

    @property
    def video_frames(self) -> int:
        p = self.participant
        return p.peer.reception.frames["video"] if p is not None and p.peer else 0

    # ---------------------------------------------------------------- speech
    async def say(self, text: str, step: int) -> Turn:
        """Speak ``text`` over the call (synthesized, after a short silence)."""
        await self.media_ready()
        speech = await asyncio.to_thread(self._tts.synthesize, text)
        return await self._speak(speech, text, step)

    async def play(self, recording: Path, step: int) -> Turn:
        """Send a recording over the call instead of synthesized speech, as ``say`` does."""
        await self.media_ready()
        pcm = await asyncio.to_thread(read_wav, recording)
        return await self._speak(pcm, recording.name, step)

    async def _speak(self, speech: Pcm, text: str, step: int) -> Turn:
        """One turn: ``speech`` after a short silence; a customer's reply is timed from
        the end of the speech (a recording's own trailing silence is not speech)."""
        pcm = np.concatenate([np.zeros(RATE * 3 // 10, np.int16), speech])
        self.voice.play(pcm)
        await drain(self.voice, timeout=pcm.size / RATE + 10)
        try:
            trailing = (speech.size - speech_span(speech)[1]) / RATE
        except ValueError:  # nothing loud in it: the end of the clip is the end of the turn
            trailing = 0.0
        turn = Turn(step, text, time.monotonic() - trailing)
        self.turns.append(turn)
        if self.kind == "customer":
            self._spawn(self._measure_reply(turn))
        return turn

    async def _measure_reply(self, turn: Turn) -> None:
        deadline = turn.spoken_end + REPLY_WAIT_S
        while time.monotonic() < deadline:
            p = self.participant
            if p is not None and p.peer is not None:
                heard = p.peer.reception.first_loud_after(turn.spoken_end, LOUD_DBFS)
                if heard is not None:
                    turn.latency_s = heard - turn.spoken_end
                    return
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------ reporting
    def seen(self) -> str:
        """The last captions and events, for a failure's report."""
        captions = [f"{m.get('speaker')}: {m.get('text')}" for m in self.log
                    if m.get("type") in ("caption", "transcript")][-3:]
        events = [str(m["type"]) + (f"({m['code']})" if m.get("code") else "")
                  for m in self.log if m.get("type") not in ("caption", "transcript", "queues",
                                                              "answer", "pong")][-6:]
        parts = [f"paired_with={self.paired_role}", f"queue_position={self.position}",
                 f"events={events}", f"captions={captions}"]
        if self.problems:
            parts.append(f"problems={self.problems[-2:]}")
        return "; ".join(parts)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.drop()
        self.voice.stop()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
