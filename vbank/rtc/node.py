"""A media node: the calls hosted by one process, driven by small JSON commands.

The same node runs inside a media worker process (one per core, see ``worker``) or inside
the server process when ``VBANK_MEDIA_WORKERS=0``. Commands are dicts with an ``op``;
results are dicts; events (a leg connected, a recording finished) go to ``emit``.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vbank.media.events import Status, to_wire
from vbank.rtc import RtcError
from vbank.rtc.call import CallMedia, EventSink
from vbank.rtc.lag import LoopLagMonitor
from vbank.rtc.snapshot import SNAPSHOT_TIMEOUT_S, NoVideo

if TYPE_CHECKING:
    from vbank.speech.digital_human import SpeechModels

#: how often the node reports its load to the server
STATUS_INTERVAL_S = 1.0


class MediaNode:
    """Hosts calls; one per process."""

    def __init__(self, recordings_dir: Path, ice_servers: list[str], emit: EventSink,
                 speech: SpeechModels | None = None) -> None:
        self.recordings_dir = recordings_dir
        self.ice_servers = ice_servers
        self._emit = emit
        self.calls: dict[str, CallMedia] = {}
        self.lag = LoopLagMonitor()
        self._status_task: asyncio.Task[None] | None = None
        #: the digital human's models (``SpeechModels``), None when it is switched off
        self.speech = speech

    def start(self) -> None:
        self.lag.start()
        self._status_task = asyncio.get_running_loop().create_task(self._report())

    def status(self) -> dict[str, Any]:
        return {"sessions": len(self.calls), "lag_p95_ms": round(self.lag.p95_ms, 2)}

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            self._emit(to_wire(Status(len(self.calls), round(self.lag.p95_ms, 2))))

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        """Carry out one command; raises ``RtcError`` for anything refused."""
        op = command.get("op")
        if op == "offer":
            call = self.calls.get(command["session_id"])
            if call is None:
                call = CallMedia(command["session_id"],
                                 self.recordings_dir / command["session_id"],
                                 self.ice_servers, self._emit)
                self.calls[call.session_id] = call
            return {"sdp": await call.offer(command["role"], command["sdp"])}
        if op == "close_leg":
            call = self.calls.get(command["session_id"])
            info = await call.close_leg(command["role"], "closed") if call else None
            return {"recording": info.as_dict() if info else None}
        if op == "close_session":
            call = self.calls.pop(command["session_id"], None)
            infos = await call.close() if call else []
            return {"recordings": [i.as_dict() for i in infos]}
        if op == "start_digital_human":
            call = self.calls.get(command["session_id"])
            if call is None or "customer" not in call.legs:
                raise RtcError("the customer's media must be connected first")
            if self.speech is None:
                raise RtcError("the digital human is switched off on this server")
            from vbank.speech.agent import PointsFacts
            from vbank.speech.digital_human import DigitalHuman

            agent = DigitalHuman(self.speech, str(command.get("language", "en")), call.emit,
                                 scripted=bool(command.get("scripted")))
            if command.get("points") is not None:  # what it may say of the customer's points
                agent.conversation.points = PointsFacts.from_dict(command["points"])
            call.attach_agent(agent)
            agent.start()
            return {}
        if op == "agent_say":  # a business flow's lines for the digital human
            call = self._call(command)
            if call.agent is None:
                raise RtcError("no digital human in this call")
            if "expect" in command:
                call.agent.expect = [str(p) for p in command["expect"]]
            call.agent.say([(str(t), str(k)) for t, k in command.get("lines", [])],
                           end=bool(command.get("end")), replace=bool(command.get("replace")))
            return {}
        if op == "listen":  # captions and quality check: hear a participant
            call = self._call(command)
            role = str(command["role"])
            if role not in call.ears:
                from vbank.speech.ears import LegEar, shared_ear

                await asyncio.to_thread(shared_ear)  # loads the models once, off the loop

                language = str(command.get("language", "en"))
                if language != "en":  # its recogniser loads once, off the loop too
                    from vbank.speech import SpeechError
                    from vbank.speech.whisper import recognizer_for

                    with contextlib.suppress(SpeechError):
                        await asyncio.to_thread(recognizer_for, language)
                call.ears[role] = LegEar(
                    role, call.emit,
                    language=language)
            ear = call.ears[role]
            ear.expect = [str(p) for p in command.get("expect", [])]
            ear.spot = [str(p) for p in command.get("spot", [])]
            call.route()
            return {}
        if op == "stop_digital_human":
            call = self.calls.get(command["session_id"])
            if call is not None:
                await call.detach_agent()
            return {}
        if op == "snapshot":
            call = self.calls.get(command["session_id"])
            if call is None:
                raise NoVideo("no media for this session")
            timeout = float(command.get("timeout_s", SNAPSHOT_TIMEOUT_S))
            return await call.snapshot(str(command["role"]), timeout)
        if op == "stats":
            call = self.calls.get(command["session_id"])
            return {"legs": call.stats() if call else {}}
        if op == "status":
            return self.status()
        if op == "close_all":
            return {"recordings": await self.close_all()}
        raise RtcError(f"unknown media command {op!r}")

    def _call(self, command: dict[str, Any]) -> CallMedia:
        call = self.calls.get(str(command.get("session_id")))
        if call is None:
            raise RtcError("no such call on this media node")
        return call

    async def close_all(self) -> list[dict[str, Any]]:
        """Close every call, finishing its recordings."""
        done: list[dict[str, Any]] = []
        for session_id in list(self.calls):
            call = self.calls.pop(session_id)
            done += [{"session_id": session_id, **i.as_dict()} for i in await call.close()]
        return done

    async def stop(self) -> None:
        await self.close_all()
        if self._status_task is not None:
            self._status_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._status_task
        await self.lag.stop()
