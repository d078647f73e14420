"""Media worker processes and the pool that places calls on them.

One aiortc process tops out near 1.4 cores (the GIL), so calls are spread over worker
processes, one per core. The server talks to each worker over a socket pair with JSON
lines: ``{"id", "op", ...}`` requests, ``{"id", "ok", "result"|"error"}`` replies and
``{"event", ...}`` messages the worker sends on its own. A worker whose server vanishes
(EOF) closes its calls, finishing the recordings, and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vbank.media.events import BadMediaEvent, FromMedia, Status, WorkerLost, parse
from vbank.media.packets import install_passthrough, uninstall_passthrough
from vbank.rtc import AdmissionRefused, RtcError
from vbank.rtc.ice import restrict_host_addresses, unrestrict_host_addresses
from vbank.rtc.node import MediaNode
from vbank.rtc.snapshot import SNAPSHOT_TIMEOUT_S, NoVideo

if TYPE_CHECKING:
    from vbank.speech.digital_human import SpeechModels

log = logging.getLogger(__name__)

#: JSON lines between server and worker carry SDP (a few KB); leave room
LINE_LIMIT = 1 << 20
#: what the server does with the media side's events, read back from JSON and typed
EventHandler = Callable[[FromMedia], None]


def prepare_process(ice_hosts: list[str]) -> None:
    """Process-wide aiortc set-up: passthrough receivers, the chosen ICE addresses."""
    install_passthrough()
    restrict_host_addresses(ice_hosts)


def restore_process() -> None:
    """Undo ``prepare_process`` (in-process media stopping; one in-process branch at a time)."""
    uninstall_passthrough()
    unrestrict_host_addresses()


class MediaClient:
    """The server's handle on one media node, wherever it runs."""

    name = "media"

    def __init__(self) -> None:
        #: sessions placed here, counted by the pool (the authority on placement)
        self.sessions = 0
        self.lag_p95_ms = 0.0
        self.alive = True

    async def request(self, op: str, **args: Any) -> dict[str, Any]:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def note_status(self, status: Status) -> None:
        self.lag_p95_ms = float(status.lag_p95_ms)

    def received(self, message: dict[str, Any], on_event: EventHandler) -> None:
        """An event line from the node: checked, its load noted, handed to the server; one
        that is not an event of the catalogue is logged and dropped."""
        try:
            got = parse(message, self.name)
        except BadMediaEvent as exc:
            log.error("media worker %s: %s", self.name, exc)
            return
        if isinstance(got.event, Status):
            self.note_status(got.event)
        on_event(got)


class LocalMediaClient(MediaClient):
    """Media inside the server process (``VBANK_MEDIA_WORKERS=0``)."""

    name = "local"

    def __init__(self, recordings_dir: Path, ice_servers: list[str],
                 on_event: EventHandler, speech: SpeechModels | None = None) -> None:
        super().__init__()

        self.node = MediaNode(recordings_dir, ice_servers,
                              lambda message: self.received(message, on_event), speech)
        self.node.start()

    async def request(self, op: str, **args: Any) -> dict[str, Any]:
        result = await self.node.handle({"op": op, **args})
        self.note_status(Status(**self.node.status()))
        return result

    async def stop(self) -> None:
        await self.node.stop()
        restore_process()


class WorkerClient(MediaClient):
    """A media worker process reached over a socket pair."""

    def __init__(self, name: str, process: asyncio.subprocess.Process,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_event: EventHandler) -> None:
        super().__init__()
        self.name = name
        self.process = process
        self._reader = reader
        self._writer = writer
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._stopping = False  # set by stop(): the end of the channel is then expected
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            while line := await self._reader.readline():
                message = json.loads(line)
                if "event" in message:
                    self.received(message, self._on_event)
                    continue
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
        except (ConnectionError, ValueError) as exc:
            log.error("media worker %s: broken channel: %s", self.name, exc)
        finally:
            self.alive = False
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(RtcError(f"media worker {self.name} stopped"))
            if not self._stopping:
                self._on_event(FromMedia(WorkerLost(), worker=self.name))

    async def request(self, op: str, **args: Any) -> dict[str, Any]:
        if not self.alive:
            raise RtcError(f"media worker {self.name} is not running")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._writer.write(json.dumps({"id": request_id, "op": op, **args}).encode() + b"\n")
        await self._writer.drain()
        reply = await future
        if not reply.get("ok"):
            error = RtcError(reply.get("error", "media error"))
            error.code = reply.get("code", "media_error")
            raise error
        return dict(reply.get("result", {}))

    async def stop(self) -> None:
        if self.alive:
            with contextlib.suppress(RtcError, ConnectionError, TimeoutError):
                await asyncio.wait_for(self.request("close_all"), 15)
        self._stopping = True
        with contextlib.suppress(Exception):
            self._writer.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._task.cancel()


async def spawn_worker(name: str, recordings_dir: Path, ice_hosts: list[str],
                       ice_servers: list[str], on_event: EventHandler,
                       digital_human: bool) -> WorkerClient:
    """Start ``python -m vbank.rtc.worker`` connected through an inherited socket."""
    from vbank.speech import speech_threads

    ours, theirs = socket.socketpair()
    # OpenMP's pool (CTranslate2's, BLAS's) sizes itself from this when the process starts:
    # left unset, Whisper took ~1.8 CPU-seconds per second of decoding, set to 1 the same
    # wall time at ~40% less CPU, which the worker's other sessions need
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS",
                                                           str(speech_threads()))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vbank.rtc.worker", "--fd", str(theirs.fileno()),
        "--recordings", str(recordings_dir), "--ice-hosts", ",".join(ice_hosts),
        "--ice-servers", ",".join(ice_servers),
        *(["--digital-human"] if digital_human else []), pass_fds=(theirs.fileno(),),
        env=env)
    theirs.close()
    reader, writer = await asyncio.open_connection(sock=ours, limit=LINE_LIMIT)
    return WorkerClient(name, process, reader, writer, on_event)


class MediaPool:
    """Places each session on a media node, refusing new ones when every node is loaded."""

    def __init__(self, max_sessions: int, max_lag_ms: float) -> None:
        self.max_sessions = max_sessions
        self.max_lag_ms = max_lag_ms
        self.clients: list[MediaClient] = []
        self.placement: dict[str, MediaClient] = {}

    async def start(self, workers: int, recordings_dir: Path, ice_hosts: list[str],
                    ice_servers: list[str], on_event: EventHandler,
                    digital_human: bool = False) -> None:
        if workers == 0:
            prepare_process(ice_hosts)
            speech = await asyncio.to_thread(load_speech) if digital_human else None
            self.clients = [LocalMediaClient(recordings_dir, ice_servers, on_event, speech)]
            return
        self.clients = list(await asyncio.gather(*(
            spawn_worker(f"w{i + 1}", recordings_dir, ice_hosts, ice_servers, on_event,
                         digital_human)
            for i in range(workers))))
        # A worker answering "status" is ready to take calls.
        await asyncio.gather(*(c.request("status") for c in self.clients))

    def _healthy(self) -> list[MediaClient]:
        return [c for c in self.clients
                if c.alive and c.sessions < self.max_sessions and c.lag_p95_ms <= self.max_lag_ms]

    def has_capacity(self) -> bool:
        return bool(self._healthy())

    def admit(self, session_id: str) -> MediaClient:
        """Choose the least-loaded healthy node for a new session, or refuse."""
        placed = self.placement.pop(session_id, None)
        if placed is not None:
            if placed.alive:
                self.placement[session_id] = placed
                return placed
            placed.sessions -= 1  # its worker died: place the session afresh
        healthy = self._healthy()
        if not healthy:
            raise AdmissionRefused("every media worker is at capacity")
        chosen = min(healthy, key=lambda c: (c.sessions, c.lag_p95_ms))
        self.placement[session_id] = chosen
        chosen.sessions += 1
        return chosen

    async def offer(self, session_id: str, role: str, sdp: object) -> str:
        client = self.placement.get(session_id) or self.admit(session_id)
        result = await client.request("offer", session_id=session_id, role=role, sdp=sdp)
        return str(result["sdp"])

    async def close_leg(self, session_id: str, role: str) -> dict[str, Any] | None:
        client = self.placement.get(session_id)
        if client is None or not client.alive:
            return None
        return (await client.request("close_leg", session_id=session_id, role=role))["recording"]

    async def close_session(self, session_id: str) -> list[dict[str, Any]]:
        client = self.placement.pop(session_id, None)
        if client is not None:
            client.sessions -= 1
        if client is None or not client.alive:
            return []
        return list((await client.request("close_session", session_id=session_id))["recordings"])

    async def snapshot(self, session_id: str, role: str = "customer",
                       timeout_s: float = SNAPSHOT_TIMEOUT_S) -> dict[str, Any]:
        """A picture of ``role``'s video saved as JPEG beside the session's recordings.

        Returns ``{path, sha256, bytes, faces, width, height}`` (``path`` absolute, ``faces``
        the frontal faces found). Raises ``RtcError`` with code ``no_video`` when the session
        has no media here, the participant sends no video, or no picture could be decoded
        within ``timeout_s`` seconds.
        """
        client = self.placement.get(session_id)
        if client is None or not client.alive:
            raise NoVideo("no media for this session")
        return await client.request("snapshot", session_id=session_id, role=role,
                                    timeout_s=timeout_s)

    async def stats(self, session_id: str) -> dict[str, Any]:
        client = self.placement.get(session_id)
        if client is None or not client.alive:
            return {}
        return dict((await client.request("stats", session_id=session_id))["legs"])

    @property
    def lag_p95_ms(self) -> float:
        return max((c.lag_p95_ms for c in self.clients), default=0.0)

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.clients), return_exceptions=True)
        self.clients = []


def load_speech() -> SpeechModels:
    """The digital human's models for this process, with a line on stderr while they load."""
    from vbank.speech.digital_human import SpeechModels

    model = os.environ.get("VBANK_VOSK_MODEL")
    print(f"[pid {os.getpid()}] loading speech models (ASR, TTS, intents)...", file=sys.stderr,
          flush=True)
    models = SpeechModels(vosk_model=Path(model) if model else None)
    print(f"[pid {os.getpid()}] speech models ready in {models.load_s:.1f} s", file=sys.stderr,
          flush=True)
    return models


# ----------------------------------------------------------------- worker process
async def _serve(fd: int, recordings_dir: Path, ice_servers: list[str],
                 digital_human: bool) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock, limit=LINE_LIMIT)

    def send(message: dict[str, Any]) -> None:
        if not writer.is_closing():
            writer.write(json.dumps(message).encode() + b"\n")

    speech = load_speech() if digital_human else None  # before answering: ready means ready
    node = MediaNode(recordings_dir, ice_servers, send, speech)
    node.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The server owns shutdown; a Ctrl-C on the terminal reaches the whole group, so ignore it.
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def run(message: dict[str, Any]) -> None:
        try:
            result = await node.handle(message)
            send({"id": message["id"], "ok": True, "result": result})
        except RtcError as exc:
            send({"id": message["id"], "ok": False, "code": exc.code, "error": str(exc)})
        except Exception as exc:
            log.exception("media command %s failed", message.get("op"))
            send({"id": message["id"], "ok": False, "code": "media_error", "error": str(exc)})

    running: set[asyncio.Task[None]] = set()

    async def read() -> None:
        while line := await reader.readline():
            task = asyncio.ensure_future(run(json.loads(line)))
            running.add(task)
            task.add_done_callback(running.discard)

    reading = asyncio.ensure_future(read())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    await node.stop()  # recordings are finished whether the server asked or vanished
    with contextlib.suppress(Exception):
        await writer.drain()
        writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vbank media worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--recordings", type=Path, required=True)
    parser.add_argument("--ice-hosts", default="127.0.0.1")
    parser.add_argument("--ice-servers", default="")
    parser.add_argument("--digital-human", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("VBANK_LOG", "WARNING"),
                        format="%(asctime)s worker %(levelname)s %(name)s: %(message)s")
    prepare_process([h for h in args.ice_hosts.split(",") if h])
    asyncio.run(_serve(args.fd, args.recordings, [u for u in args.ice_servers.split(",") if u],
                       args.digital_human))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
