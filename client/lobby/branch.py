"""The customer's link to the branch server: sign-in, the signaling WebSocket, the mall's HTTP.

Everything here runs as coroutines on a ``NetLink``'s loop, off the render loop; the main
thread calls the plain methods (``enter``, ``walk``, ``join``, ``fetch_mall``, ``redeem``,
``close``), which return at once (``concurrent.futures.Future``s, for those who want to
wait). What comes back reaches the main thread through the link's inbox: every server
message as it is, plus these of the client's own:

``points {account}``, ``mall_items {items}``, ``redemption_placed {item_id, order_id,
balance, replayed}``, ``redemption_refused {reason, status}``, ``redemption_failed
{reason}``, ``link_down {reason, reconnecting}``, ``link_up {attempts}``, and the call's
``call_media {state, session_id}``.

A link lost while in the hall is re-established by itself, again and again with growing
pauses (``RECONNECT_S``) until it is back or the sign-in is refused: the branch keeps the
customer's place in the queue, or their call, for a grace period, and its ``welcome`` says
which; the call's media carries on if it survived, or is offered again.

When the branch pairs the customer the link opens the call's media (``client.lobby.call``);
it closes it when the call ends.

While in the hall the latest pose the main thread gave ``walk`` goes to the server as a
``move`` every ``move_period_s`` — and only when it changed, so standing still costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import httpx
from aiortc.mediastreams import MediaStreamTrack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from client.lobby import LinkError, SignInRefused
from client.lobby.call import CAMERA_SIZE, DEFAULT_DEVICE, CallMedia
from client.lobby.net import NetLink
from client.lobby.shelf import Redeem

log = logging.getLogger(__name__)

#: how often a walking customer's position goes to the server (it sends updates at 5 Hz)
MOVE_PERIOD_S = 0.2
#: seconds an HTTP request or the WebSocket's sign-in may take
TIMEOUT_S = 10.0
#: the largest signaling message accepted (the server's limit is far smaller)
MAX_MESSAGE_BYTES = 1 << 20
#: seconds before each attempt to get back to the branch after losing it (the last repeats)
RECONNECT_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)

#: signaling errors that refuse a call's offer (vbank.rtc's codes and the branch's; also
#: ``rate_limited`` with ``refused: offer``)
OFFER_ERRORS = frozenset({"bad_sdp", "busy", "media_error", "not_in_session"})

Pose = tuple[float, float, float]


def refusal(response: httpx.Response) -> str:
    """The server's words for a refused request: FastAPI's ``detail``, a string or a list."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d)
                           for d in detail)
    return str(detail) if detail else f"HTTP {response.status_code}"


class BranchLink:
    """One customer's session with the branch, on ``net``'s loop."""

    def __init__(self, net: NetLink, server: str, username: str, password: str, *,
                 move_period_s: float = MOVE_PERIOD_S,
                 voice: Callable[[], MediaStreamTrack] | None = None,
                 microphone: str = DEFAULT_DEVICE, speaker: str = DEFAULT_DEVICE,
                 language: str | None = None) -> None:
        self.net = net
        #: the language the customer is served in (None: the branch's default)
        self.language = language
        self.server = server.rstrip("/")
        self.username = username
        self._password = password  # kept to sign in again when the short-lived token expires
        self.move_period_s = move_period_s
        self._token: str | None = None
        self._http: httpx.AsyncClient | None = None
        self._ws: ClientConnection | None = None
        #: the latest pose from the main thread; a tuple, so assigning it is atomic
        self._pose: Pose | None = None
        self._sent: Pose | None = None  # the last pose the server heard
        self._tasks: list[asyncio.Task[None]] = []  # reading and walking, per socket
        self._call_tasks: set[asyncio.Task[None]] = set()  # starting and closing media
        #: in the hall and meaning to stay: a lost link is re-established
        self._staying = False
        self._reconnecting: asyncio.Task[None] | None = None
        self.moves_sent = 0  # how many ``move`` messages went out (tests and the HUD read it)
        #: the call's media; ``voice`` makes the track to speak with (default: the microphone
        #: if there is one, else silence)
        self.call = CallMedia(net, self._send, username, voice=voice, microphone=microphone,
                              speaker=speaker)
        #: called on the network loop with every server message (the scenario runner listens)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    # ------------------------------------------------------------------ from the main thread
    def enter(self, x: float, y: float, heading: float) -> Future[dict[str, Any]]:
        """Sign in, open the socket, walk into the hall at this pose; the future's result is
        the server's ``welcome``. Failures also arrive as ``link_down``."""
        self.walk(x, y, heading)
        return self.net.submit(self._enter())

    def walk(self, x: float, y: float, heading: float) -> None:
        """Where the customer is now; sent with the next ``move`` if it changed."""
        self._pose = (round(x, 2), round(y, 2), round(heading % 360.0, 1))

    def join(self, service: str) -> Future[None]:
        """Join a service's queue (the server answers ``queued``)."""
        message = {"type": "join", "service": service}
        if self.language is not None:
            message["language"] = self.language
        return self.net.submit(self._send(message))

    def leave_queue(self) -> Future[None]:
        """Leave the queue, or hang up the call."""
        return self.net.submit(self._send({"type": "leave"}))

    def send(self, message: dict[str, Any]) -> Future[None]:
        """Send one signaling message as it is (the flows' ``sign``, ``answer``, …)."""
        return self.net.submit(self._send(message))

    def show_id(self, name: str, id_number: str) -> Future[None]:
        """Hold one's ID card up to the camera beside one's face, and say whose it is."""
        return self.net.submit(self._show_id(name, id_number))

    def drop(self) -> Future[None]:
        """Vanish without goodbye: the socket and the call's media simply go away."""
        return self.net.submit(self._drop())

    def fetch_mall(self) -> Future[None]:
        """Fetch the items (with this customer's prices) and the points; they arrive as
        ``mall_items`` and ``points``."""
        return self.net.submit(self._fetch_mall())

    def redeem(self, command: Redeem) -> Future[None]:
        """Redeem one item with the command's Idempotency-Key; the outcome arrives as
        ``redemption_placed``, ``redemption_refused`` or ``redemption_failed``, then the
        shelf is fetched again."""
        return self.net.submit(self._redeem(command))

    def close(self, timeout: float = 5.0) -> None:
        """Leave the hall and close the socket (blocks up to ``timeout``)."""
        with contextlib.suppress(Exception):
            self.net.submit(self._close()).result(timeout)

    # ------------------------------------------------------------------ on the network loop
    async def _enter(self) -> dict[str, Any]:
        try:
            welcome = await self._connect()
            self._staying = True
            await self._visit()
            await self._fetch_points()
            return welcome
        except (httpx.HTTPError, OSError, WebSocketException, TimeoutError) as exc:
            reason = f"cannot reach the branch at {self.server}: {exc or type(exc).__name__}"
            self.net.post("link_down", reason=reason, reconnecting=False)
            raise LinkError(reason) from exc
        except LinkError as exc:
            self.net.post("link_down", reason=str(exc), reconnecting=False)
            raise

    async def _connect(self) -> dict[str, Any]:
        """Sign in, open the socket, walk into the hall where the customer stands."""
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.server, timeout=TIMEOUT_S)
        await self._sign_in()
        welcome = await self._open_socket()
        self._heard(welcome)
        assert self._pose is not None
        x, y, heading = self._sent = self._pose
        await self._send({"type": "lobby_enter", "x": x, "y": y, "heading": heading})
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read(), name="lobby-read"),
                       loop.create_task(self._walk(), name="lobby-walk")]
        return welcome

    async def _reconnect(self) -> None:
        """Back to the branch after the link was lost, as often as it takes."""
        for attempt in itertools.count():
            await asyncio.sleep(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
            if not self._staying:
                return
            await self._stop_tasks()
            if self._ws is not None:
                self._ws.transport.abort()
                self._ws = None
            try:
                await self._connect()
            except (httpx.HTTPError, OSError, WebSocketException, TimeoutError) as exc:
                log.info("the branch is still out of reach: %s", exc or type(exc).__name__)
                continue
            except SignInRefused as exc:  # a password changed or an account closed
                self._staying = False
                self.net.post("link_down", reason=str(exc), reconnecting=False)
                return
            except LinkError as exc:
                log.info("the branch did not take us back yet: %s", exc)
                continue
            self.net.post("link_up", attempts=attempt + 1)
            return

    async def _sign_in(self) -> None:
        assert self._http is not None
        r = await self._http.post("/api/v1/auth/login",
                                  json={"username": self.username, "password": self._password})
        if r.status_code in (401, 403):
            raise SignInRefused(f"cannot sign in as {self.username}: {refusal(r)}")
        if r.status_code != 200:
            raise LinkError(f"cannot sign in as {self.username}: {refusal(r)}")
        self._token = str(r.json()["access_token"])

    async def _open_socket(self) -> dict[str, Any]:
        url = "ws" + self.server.removeprefix("http") + "/ws"
        self._ws = await connect(url, max_size=MAX_MESSAGE_BYTES, open_timeout=TIMEOUT_S)
        await self._ws.send(json.dumps({"type": "auth", "token": self._token}))
        try:
            first = json.loads(await asyncio.wait_for(self._ws.recv(), TIMEOUT_S))
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd is not None else "closed"
            raise LinkError(f"the branch refused the connection: {reason}") from exc
        if not isinstance(first, dict) or first.get("type") != "welcome":
            raise LinkError(f"the branch did not say welcome: {first!r}"[:200])
        return first

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None:
            raise LinkError("not connected to the branch")
        await self._ws.send(json.dumps(message))

    async def _read(self) -> None:
        """Every server message, as it comes, into the inbox."""
        assert self._ws is not None
        try:
            async for text in self._ws:
                try:
                    message = json.loads(text)
                except ValueError:
                    log.warning("the branch sent something that is not JSON")
                    continue
                if isinstance(message, dict) and isinstance(message.get("type"), str):
                    self._heard(message)
            reason = self._ws.close_reason or "the branch closed the connection"
        except ConnectionClosed as exc:
            reason = (exc.rcvd.reason if exc.rcvd else "") or "the connection was lost"
        self.net.post("link_down", reason=reason, reconnecting=self._staying)
        if self._staying and (self._reconnecting is None or self._reconnecting.done()):
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    def _heard(self, message: dict[str, Any]) -> None:
        """A server message: the call's media follows it, the main thread gets it."""
        kind = message.get("type")
        session = message.get("session") if kind == "welcome" else None
        if kind == "paired":
            self._open_call(str(message.get("session_id")))
        elif isinstance(session, dict) and session.get("state") == "in_call":
            self._open_call(str(session.get("session_id")))  # back in a call after a reconnect
        elif kind == "welcome" and self.call.session_id is not None:
            self._spawn(self.call.close())  # back, but the call did not wait
        elif kind == "answer":
            self.call.on_answer(message)
        elif kind == "error" and (message.get("code") in OFFER_ERRORS or (
                message.get("code") == "rate_limited" and message.get("refused") == "offer")):
            self.call.on_error(message)
        elif kind in ("ended", "left"):
            self._spawn(self.call.close())
        for listener in self.listeners:
            listener(message)
        self.net.put(message)

    def _open_call(self, session_id: str) -> None:
        if not self.call.carries(session_id):  # a teller taking over keeps the same media
            self._spawn(self.call.start(session_id))

    def _spawn(self, coro: Any) -> None:
        """Start the call's media work; a lost link does not stop it (the call may well
        survive the socket), only ``close`` and ``drop`` do."""
        task = asyncio.get_running_loop().create_task(coro)
        self._call_tasks.add(task)
        task.add_done_callback(self._call_tasks.discard)

    async def _walk(self) -> None:
        """A ``move`` every period while the pose changes, nothing while it does not."""
        while True:
            await asyncio.sleep(self.move_period_s)
            pose = self._pose
            if pose is None or pose == self._sent:
                continue
            x, y, heading = pose
            try:
                await self._send({"type": "move", "x": x, "y": y, "heading": heading})
            except ConnectionClosed:
                return  # the reader reports it
            self._sent = pose
            self.moves_sent += 1

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authorised request; signs in again once if the token has expired."""
        if self._http is None:
            raise LinkError("not connected to the branch")
        http, headers = self._http, kwargs.pop("headers", {})

        async def send() -> httpx.Response:
            return await http.request(method, path, **kwargs, headers={
                **headers, "Authorization": f"Bearer {self._token}"})

        r = await send()
        if r.status_code == 401:
            await self._sign_in()
            r = await send()
        return r

    async def _visit(self) -> None:
        """Coming into the hall is a branch visit: it earns points once a day (the branch
        decides), which the ``points`` that follows shows."""
        r = await self._request("POST", "/api/v1/lobby/visits")
        if r.status_code not in (200, 201):
            self.net.post("error", code="visit", message=f"the visit: {refusal(r)}")

    async def _fetch_points(self) -> None:
        r = await self._request("GET", "/api/v1/points")
        if r.status_code == 200:
            self.net.post("points", account=r.json())
        else:
            self.net.post("error", code="points", message=f"points: {refusal(r)}")

    async def _fetch_mall(self) -> None:
        try:
            items = await self._request("GET", "/api/v1/mall/items")
            if items.status_code == 200:
                self.net.post("mall_items", items=items.json())
            else:
                self.net.post("error", code="mall", message=f"the mall: {refusal(items)}")
            await self._fetch_points()
        except (httpx.HTTPError, LinkError) as exc:
            self.net.post("error", code="mall", message=f"the mall cannot be reached: {exc}")

    async def _redeem(self, command: Redeem) -> None:
        try:
            r = await self._request("POST", "/api/v1/mall/redemptions",
                                    json={"item_id": command.item_id, "quantity": 1},
                                    headers={"Idempotency-Key": command.key})
        except (httpx.HTTPError, LinkError) as exc:
            # it may or may not have reached the server: a retry with the same key is safe
            self.net.post("redemption_failed", reason=f"no answer from the branch ({exc})")
            return
        if r.status_code in (200, 201):
            body = r.json()
            self.net.post("redemption_placed", item_id=command.item_id,
                          order_id=body["order_id"], balance=body["balance"],
                          replayed=r.headers.get("Idempotent-Replayed") == "true")
        elif r.status_code == 503 or r.status_code >= 500:
            self.net.post("redemption_failed", reason=refusal(r))
        else:
            self.net.post("redemption_refused", reason=refusal(r), status=r.status_code)
        await self._fetch_mall()  # stock and balance as they are now

    async def _show_id(self, name: str, id_number: str) -> None:
        from vbank.avatar.idcard import id_scene

        camera = self.call.camera
        if camera is None:
            raise LinkError("no camera: the call's media is not up")
        w, h = CAMERA_SIZE
        camera.hold(await asyncio.to_thread(id_scene, name, id_number, w, h))
        await self._send({"type": "show_id", "name": name, "id_number": id_number})

    async def _stop_tasks(self) -> None:
        tasks, self._tasks = list(self._tasks), []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stop_call_tasks(self) -> None:
        tasks, self._call_tasks = list(self._call_tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drop(self) -> None:
        self._staying = False
        await self._stop_tasks()
        await self._stop_call_tasks()
        await self.call.close(report=False)
        if self._ws is not None:
            # no goodbye: the transport goes away, as when a laptop loses its network
            self._ws.transport.abort()
            self._ws = None

    async def _close(self) -> None:
        self._staying = False
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        await self._stop_tasks()
        await self._stop_call_tasks()
        await self.call.close(report=False)
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await self._ws.send(json.dumps({"type": "lobby_leave"}))
            await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
