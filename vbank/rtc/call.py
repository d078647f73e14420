"""One call's media: a peer connection per participant ("leg"), relayed and recorded.

The customer's leg and the teller's leg both terminate here. Whatever one leg receives is
fanned out to the other leg's outgoing tracks and to that leg's recorder. A leg can be
rebuilt under the same session (a reconnect: aiortc has no ICE restart), and the teller's
leg can be replaced by another teller's while the customer's stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterBuffer

from vbank.media.events import LegClosed, LegState, MediaEvent, to_wire
from vbank.media.packets import MediaPacket
from vbank.media.relay import Fanout, Item, RelayTrack
from vbank.rtc import BadSdp, RtcError
from vbank.rtc.ice import rtc_configuration
from vbank.rtc.recorder import LegRecorder, RecordingInfo
from vbank.rtc.snapshot import SNAPSHOT_TIMEOUT_S, NoVideo, take_snapshot

log = logging.getLogger(__name__)

ROLES = ("customer", "teller")
#: the largest SDP a media node accepts whatever the settings (``VBANK_MAX_SDP_BYTES``, which
#: the branch checks first, may only be lower); real offers are a few KB
MAX_SDP_BYTES = 32_000
#: the most media sections (m= lines) a media node accepts whatever the settings
#: (``VBANK_MAX_SDP_MEDIA``); a browser offers two, audio and video
MAX_SDP_MEDIA = 16
#: audio packets held before playout: 1 instead of aiortc's 4 saves 60 ms per hop
AUDIO_PREFETCH = 1

#: where a call's events go, as the JSON objects a worker sends (``media.events.to_wire``)
EventSink = Callable[[dict[str, Any]], None]


class Ear(Protocol):
    """What hears a participant for captions and the quality check (``speech.ears.LegEar``):
    the phrases a step listens for first, and those searched for in every utterance."""

    expect: list[str]
    spot: list[str]

    def listen(self, fanout: Fanout | None) -> None: ...

    async def stop(self) -> None: ...


class Agent(Protocol):
    """A participant the media node runs in place of a teller (``speech.digital_human``):
    it hears the customer and sends its voice and face."""

    expect: list[str]

    @property
    def audio(self) -> MediaStreamTrack: ...

    @property
    def video(self) -> MediaStreamTrack: ...

    def listen(self, fanout: Fanout | None) -> None: ...

    def say(self, lines: list[tuple[str, str]], end: bool = False,
            replace: bool = False) -> None: ...

    async def stop(self) -> None: ...


def other(role: str) -> str:
    return "teller" if role == "customer" else "customer"


def check_offer_sdp(sdp: object, max_bytes: int = MAX_SDP_BYTES,
                    max_media: int = MAX_SDP_MEDIA) -> str:
    """Refuse what cannot be an SDP offer, or is more than a call needs, before aiortc parses
    it: each media section without BUNDLE is an ICE and DTLS transport of its own."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise BadSdp("sdp must be a non-empty string")
    if len(sdp.encode()) > max_bytes:
        raise BadSdp(f"sdp larger than {max_bytes} bytes")
    if not sdp.lstrip().startswith("v=0"):
        raise BadSdp("sdp must start with v=0")
    sections = sum(line.startswith("m=") for line in sdp.splitlines())
    if not sections:
        raise BadSdp("sdp has no media section")
    if sections > max_media:
        raise BadSdp(f"the offer has {sections} media sections; at most {max_media} are "
                     "accepted")
    return sdp


def prefer_codecs(pc: RTCPeerConnection) -> None:
    """Negotiate VP8 and Opus only, so media can pass between peers undecoded."""
    for transceiver in pc.getTransceivers():
        kind = transceiver.kind
        caps = RTCRtpSender.getCapabilities(kind).codecs
        wanted = "video/vp8" if kind == "video" else "audio/opus"
        chosen = [c for c in caps if c.mimeType.lower() == wanted]
        if kind == "video":
            chosen += [c for c in caps if c.mimeType.lower() == "video/rtx"]
        transceiver.setCodecPreferences(chosen)


def _shorten_audio_buffer(receiver: RTCRtpReceiver) -> None:
    # aiortc fixes prefetch=4 for audio (80 ms); it is a private attribute, set once here.
    if receiver.track is not None and receiver.track.kind == "audio":
        receiver._RTCRtpReceiver__jitter_buffer = JitterBuffer(  # type: ignore[attr-defined]
            capacity=16, prefetch=AUDIO_PREFETCH)


#: RTCP sends in flight (a task must be referenced until it finishes)
_rtcp_tasks: set[asyncio.Future[None]] = set()


def _pli_sender(receiver: RTCRtpReceiver) -> Callable[[], None]:
    def request() -> None:
        ssrcs = getattr(receiver, "_RTCRtpReceiver__active_ssrc", {})
        for ssrc in list(ssrcs):
            task = asyncio.ensure_future(receiver._send_rtcp_pli(ssrc))
            _rtcp_tasks.add(task)
            task.add_done_callback(_rtcp_tasks.discard)

    return request


class Leg:
    """One participant's peer connection within a call."""

    def __init__(self, call: CallMedia, role: str, number: int) -> None:
        self.call = call
        self.role = role
        self.pc = RTCPeerConnection(rtc_configuration(call.ice_servers))
        self.outgoing = {"audio": RelayTrack("audio"), "video": RelayTrack("video")}
        self.incoming: dict[str, Fanout] = {}  # the first track of each kind: relayed
        #: further tracks of a kind an offer brought (two audio sections): read, so their
        #: packets do not pile up, relayed nowhere, and stopped with the leg
        self.unused: list[Fanout] = []
        self.recorder: LegRecorder | None = None
        self.path = call.directory / f"{role}-{number}.webm"
        self.state = "new"
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("track", self._on_track)

    async def answer(self, sdp: str) -> str:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError, ... on bad SDP
            raise BadSdp(f"offer rejected: {exc}") from exc
        kinds = {t.kind for t in self.pc.getTransceivers()}
        if not kinds & {"audio", "video"}:
            raise BadSdp("offer has neither audio nor video")
        prefer_codecs(self.pc)
        offered = {t.kind: t for t in self.pc.getTransceivers()}
        for kind, track in self.outgoing.items():
            if kind in offered and offered[kind].direction in ("sendrecv", "recvonly"):
                # addTrack reuses the offered transceiver and makes it send as well
                self._forward_pli(self.pc.addTrack(track), track)
        for transceiver in self.pc.getTransceivers():
            _shorten_audio_buffer(transceiver.receiver)
        self.recorder = LegRecorder(self.path, expect_video="video" in kinds)
        try:
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:
            raise BadSdp(f"cannot answer this offer: {exc}") from exc
        return str(self.pc.localDescription.sdp)

    @staticmethod
    def _forward_pli(sender: RTCRtpSender, track: RelayTrack) -> None:
        # With passthrough there is no encoder to force a keyframe: ask the source instead.
        own = sender._send_keyframe

        def send_keyframe() -> None:
            own()
            track.request_keyframe()

        sender._send_keyframe = send_keyframe  # type: ignore[method-assign]

    def _on_track(self, track: Any) -> None:
        receiver = next((t.receiver for t in self.pc.getTransceivers()
                         if t.receiver.track is track), None)
        fanout = Fanout(track, _pli_sender(receiver) if receiver is not None else None)
        if track.kind in self.incoming:
            # Once put in its kind's place, so the first was no longer stopped with the leg:
            # its task, still reading, was destroyed pending when collected with the old
            # connection ("Task was destroyed but it is pending!" after re-offers).
            self.unused.append(fanout)
            return
        self.incoming[track.kind] = fanout
        fanout.subscribe(self._record)
        self.call.route()

    def _record(self, packet: Item, _source: int) -> None:
        if self.recorder is not None and isinstance(packet, MediaPacket):
            self.recorder.write(packet)

    async def _on_state(self) -> None:
        self.state = self.pc.connectionState
        self.call.emit(LegState(self.role, self.state))
        if self.state == "failed":
            await self.call.close_leg(self.role, reason="failed")

    async def close(self) -> RecordingInfo | None:
        for fanout in [*self.incoming.values(), *self.unused]:
            await fanout.stop()
        for track in self.outgoing.values():
            track.stop()
        with contextlib.suppress(Exception):
            await self.pc.close()
        return await self.recorder.close() if self.recorder else None


class CallMedia:
    """The media side of one session."""

    def __init__(self, session_id: str, directory: Path, ice_servers: list[str],
                 emit: EventSink) -> None:
        self.session_id = session_id
        self.directory = directory
        self.ice_servers = ice_servers
        self._emit = emit
        self.legs: dict[str, Leg] = {}
        #: a server-side participant serving the customer while no teller does
        self.agent: Agent | None = None
        self._agent_sources: dict[str, Fanout] = {}
        #: per role, what hears that participant (``speech.ears.LegEar``) for captions and QC
        self.ears: dict[str, Ear] = {}
        self._numbers = {role: 0 for role in ROLES}
        self.recordings: list[RecordingInfo] = []
        self._snapshots = 0  # numbers snapshot-<n>.jpg in this session's directory

    def emit(self, event: MediaEvent) -> None:
        """An event of this call, to the server."""
        self._emit(to_wire(event, self.session_id))

    async def offer(self, role: str, sdp: object) -> str:
        """Answer a participant's offer; a new offer replaces their previous connection.

        The new connection is built first, so an offer that fails leaves the call as it was.
        """
        if role not in ROLES:
            raise RtcError(f"unknown role {role!r}")
        checked = check_offer_sdp(sdp)
        self._numbers[role] += 1
        leg = Leg(self, role, self._numbers[role])
        try:
            answer = await leg.answer(checked)
        except BaseException:
            await leg.close()
            raise
        if role in self.legs:
            await self.close_leg(role, reason="reconnect")
        self.legs[role] = leg
        self.route()
        return answer

    def route(self) -> None:
        """Point each leg's outgoing tracks at the other side: the other leg, or the agent."""
        for role, leg in self.legs.items():
            peer = self.legs.get(other(role))
            for kind, track in leg.outgoing.items():
                source = peer.incoming.get(kind) if peer else None
                if source is None and role == "customer" and self.agent is not None:
                    source = self._agent_sources.get(kind)
                if track.source is not source:
                    track.attach(source)
        if self.agent is not None:
            customer = self.legs.get("customer")
            self.agent.listen(customer.incoming.get("audio") if customer else None)
        for role, ear in self.ears.items():
            heard = self.legs.get(role)
            ear.listen(heard.incoming.get("audio") if heard else None)

    def attach_agent(self, agent: Agent) -> None:
        """Let a server-side participant (the digital human) serve the customer."""
        self.agent = agent
        self._agent_sources = {"audio": Fanout(agent.audio), "video": Fanout(agent.video)}
        self.route()

    async def detach_agent(self) -> None:
        agent, sources = self.agent, self._agent_sources
        self.agent, self._agent_sources = None, {}
        self.route()
        for fanout in sources.values():
            await fanout.stop()
        if agent is not None:
            await agent.stop()

    async def close_leg(self, role: str, reason: str) -> RecordingInfo | None:
        leg = self.legs.pop(role, None)
        if leg is None:
            return None
        self.route()
        info = await leg.close()
        if info is not None:
            self.recordings.append(info)
        self.emit(LegClosed(role, reason, info.as_dict() if info else None))
        return info

    async def close(self) -> list[RecordingInfo]:
        await self.detach_agent()
        for ear in self.ears.values():
            await ear.stop()
        for role in list(self.legs):
            await self.close_leg(role, reason="session_closed")
        return list(self.recordings)

    async def snapshot(self, role: str,
                       timeout: float = SNAPSHOT_TIMEOUT_S) -> dict[str, Any]:
        """A picture of ``role``'s video saved as ``snapshot-<n>.jpg`` beside the recordings,
        with the faces in it counted; raises ``NoVideo`` when there is no picture to take."""
        if role not in ROLES:
            raise RtcError(f"unknown role {role!r}")
        leg = self.legs.get(role)
        video = leg.incoming.get("video") if leg is not None else None
        if video is None:
            raise NoVideo(f"the {role} is sending no video")
        self._snapshots += 1
        path = self.directory / f"snapshot-{self._snapshots}.jpg"
        while path.exists():  # this session resumed on a fresh node: keep earlier snapshots
            self._snapshots += 1
            path = self.directory / f"snapshot-{self._snapshots}.jpg"
        return (await take_snapshot(video, path, timeout)).as_dict()

    def stats(self) -> dict[str, Any]:
        return {role: {"state": leg.state,
                       "received": {k: f.packets for k, f in leg.incoming.items()},
                       "sent": {k: t.sent for k, t in leg.outgoing.items()}}
                for role, leg in self.legs.items()}
