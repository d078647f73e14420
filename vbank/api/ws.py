"""``/ws``: the signaling WebSocket. Authenticates, parses, checks roles, calls the branch.

The first message must be ``{"type": "auth", "token": ...}``: tokens never travel in URLs,
which end up in access logs. The token's login is checked again every
``VBANK_AUTH_CACHE_S`` (at least every second) while the socket is open: a user demoted,
deleted or signed out loses the socket (1008), and with it a call in progress, as if they
had dropped. Close codes: 1008 for policy (authentication, a page from
another origin than the server's own or ``VBANK_WS_ORIGINS``, more than
``VBANK_WS_PER_ADDRESS`` connections from one address), 1009 for a message over the size
limit. Any other bad input gets an ``error`` message and the connection stays open, so one
malformed message never ends a call: not JSON (``NaN`` and ``Infinity`` are not), or nested
deeper than ``MAX_DEPTH`` (``bad_json``); a string that is not valid Unicode, a lone
surrogate such as ``"\\ud800"`` (``bad_text``: it would be stored, and no sealed document
could be written with it); a text field longer than ``MAX_CHARS`` allows (``bad_message``);
a message past its kind's allowance on this socket (``rate_limited`` with ``retry_after_s``,
see ``vbank.limits.SocketAllowance``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from vbank.api.deps import client_address
from vbank.api.standing import Standings
from vbank.auth import AuthError, Principal, Role, read_token
from vbank.branch import Branch, BranchError
from vbank.cluster.store import QueueUnavailable
from vbank.config import Settings
from vbank.domain import DomainError
from vbank.limits import Limits, SocketAllowance
from vbank.lobby import LobbyError
from vbank.store import repo
from vbank.store.mall import account

log = logging.getLogger(__name__)
router = APIRouter()

POLICY, TOO_BIG, TRY_AGAIN = 1008, 1009, 1013
#: an older connection of someone who signed in again elsewhere (application close code)
REPLACED = 4001

#: deepest nesting of arrays and objects a message may have (ours have two or three levels)
MAX_DEPTH = 16
#: the longest each text field may be, in characters: what a customer writes is stored in
#: the call's evidence (a name, an acknowledgement in their words), the rest are ids. The
#: signature's image has its own limit in bytes (``vbank.business``).
MAX_CHARS = {"name": 100, "text": 500, "id_number": 32, "service": 64, "session_id": 64,
             "status": 16, "outcome": 32, "flow": 64, "document": 64, "document_sha256": 64,
             "question": 32, "option": 16}

#: which roles may send each message type
ALLOWED: dict[str, tuple[Role, ...]] = {
    "join": (Role.CUSTOMER,),
    "leave": (Role.CUSTOMER,),
    "ask_for": (Role.CUSTOMER,),
    "status": (Role.TELLER,),
    "accept": (Role.TELLER,),
    "end": (Role.TELLER,),
    "offer": (Role.CUSTOMER, Role.TELLER),
    "ping": tuple(Role),
    # business flows in a call (vbank.business)
    "start_flow": (Role.TELLER,),
    "push": (Role.TELLER,),
    "verify_identity": (Role.TELLER,),
    "advance": (Role.TELLER,),
    "back": (Role.TELLER,),
    "show_id": (Role.CUSTOMER,),
    "sign": (Role.CUSTOMER,),
    "answer": (Role.CUSTOMER,),
    "acknowledge": (Role.CUSTOMER,),
    # the 3D lobby (vbank.lobby)
    "lobby_enter": (Role.CUSTOMER,),
    "move": (Role.CUSTOMER,),
    "lobby_leave": (Role.CUSTOMER,),
}
#: a person's commands about their session: with several nodes, carried out by the node
#: that hosts it (``forwarded``), wherever they are signed in
HOSTED = {
    Role.TELLER: frozenset({"end", "offer", "start_flow", "push", "verify_identity",
                            "advance", "back"}),
    Role.CUSTOMER: frozenset({"join", "leave", "ask_for", "offer", "show_id", "sign",
                              "answer", "acknowledge"}),
}


class WsConnection:
    """One signed-in WebSocket, as the branch sees it."""

    def __init__(self, ws: WebSocket, principal: Principal, display_name: str,
                 tier: str, skills: list[str]) -> None:
        self.ws = ws
        self.principal = principal  # the token's login, checked again while the socket is open
        self.username = principal.username
        self.role = principal.role
        self.display_name = display_name
        self.tier = tier
        self.skills = skills  # a teller's registered skills, their default when signing in
        self._lock = asyncio.Lock()  # one frame at a time from the many tasks that push

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            if self.ws.application_state is WebSocketState.CONNECTED:
                await self.ws.send_text(json.dumps(message))

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason)


class RemoteConnection:
    """A person signed in on another node, as the node hosting their call sees them: what is
    sent to them goes through ``Cluster`` to their node and socket."""

    def __init__(self, branch: Branch, user: dict[str, Any]) -> None:
        self.branch = branch
        self.username = str(user["username"])
        self.role = Role(user["role"])
        self.display_name = str(user["display_name"])
        self.tier = str(user.get("tier", "standard"))
        self.skills = [str(s) for s in user.get("skills", [])]

    async def send(self, message: dict[str, Any]) -> None:
        await self.branch.send_to(self.username, message)


def _who(conn: WsConnection | RemoteConnection) -> dict[str, Any]:
    return {"username": conn.username, "role": conn.role.value,
            "display_name": conn.display_name, "tier": conn.tier, "skills": conn.skills}


async def forwarded(branch: Branch, payload: dict[str, Any]) -> None:
    """A teller's command sent on by their node to this one, which hosts their call."""
    conn = RemoteConnection(branch, payload["user"])
    message = payload["message"]
    try:
        await _dispatch(branch, conn, message)
    except BranchError as exc:
        await conn.send(error(exc.code, str(exc)))
    except QueueUnavailable as exc:
        await conn.send(error("busy", str(exc)))
    except Exception:
        log.exception("handling %s from %s (another node)", message.get("type"), conn.username)
        await conn.send(error("internal", "the branch could not do that; please try again"))


async def reattached(branch: Branch, payload: dict[str, Any]) -> dict[str, Any]:
    """A customer whose session is hosted here reconnected to another node: the session
    goes on through it, and a socket of theirs still open here is closed as replaced."""
    customer = str(payload["customer"])
    older = branch.connections.get(customer)
    answer = await branch.reattach(customer, str(payload["session_id"]))
    if isinstance(older, WsConnection) and branch.connections.get(customer) is not older:
        await older.close(REPLACED, "signed in elsewhere")
    return answer


async def _elsewhere(branch: Branch, conn: WsConnection | RemoteConnection) -> str | None:
    """The node hosting this person's call or (a customer's) session, when not this one."""
    if branch.cluster is None or isinstance(conn, RemoteConnection):
        return None
    if conn.role is Role.TELLER:
        if branch.session_of_teller(conn.username) is not None:
            return None
        teller = await branch.queue.teller(conn.username)
        sid = teller.session_id if teller is not None else None
    elif branch.session_of_customer(conn.username) is not None:
        return None
    else:
        sid = await branch.cluster.session_of(conn.username)
    node = await branch.cluster.home_of(sid) if sid else None
    return node if node and node != branch.cluster.node else None


def error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def rate_limited(kind: str, wait_s: float) -> dict[str, Any]:
    """The answer to a message past its kind's allowance: nothing of it was done."""
    wait_s = round(max(wait_s, 0.01), 2)
    return {**error("rate_limited", f"too many {kind} messages; nothing was done, try again "
                                    f"in {wait_s:g} s"),
            "refused": kind, "retry_after_s": wait_s}


def parse(text: str) -> dict[str, Any]:
    """A message from its text, or ``BranchError`` with the error to send back."""
    try:
        message = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):  # RecursionError: nesting past Python's stack
        raise BranchError("bad_json", "the message is not valid JSON") from None
    problem = text_problem(message)
    if problem is not None:
        raise BranchError(*problem)
    if not isinstance(message, dict):
        raise BranchError("bad_message", "a message must be a JSON object")
    return message


def text_problem(value: Any) -> tuple[str, str] | None:
    """Why a parsed message cannot be taken in: too deeply nested, or a key or string that
    is not valid Unicode (a lone UTF-16 surrogate, which JSON's ``\\u`` escapes allow and
    UTF-8 cannot encode). Walked without recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if not _valid_unicode(item):
                return "bad_text", "a text in the message is not valid Unicode " \
                                   "(a lone surrogate); nothing was done"
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return "bad_json", f"the message is nested deeper than {MAX_DEPTH} levels"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending += [(child, depth + 1) for child in children]
    return None


def _not_json(name: str) -> Any:
    """Python reads NaN and Infinity, which JSON has not (and a sealed document cannot hold)."""
    raise ValueError(f"{name} is not JSON")


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def _authenticate(ws: WebSocket, settings: Settings) -> WsConnection | None:
    try:
        first = await asyncio.wait_for(ws.receive_text(), settings.ws_auth_timeout_s)
    except TimeoutError:
        await ws.close(POLICY, "authentication timeout")
        return None
    except (WebSocketDisconnect, RuntimeError, KeyError):
        return None
    try:
        message = json.loads(first)
        if not isinstance(message, dict) or message.get("type") != "auth":
            raise AuthError("the first message must be {type: auth, token}")
        principal = read_token(str(message.get("token", "")), settings.secret)
        await ws.app.state.standings.check(principal)
    except (ValueError, RecursionError, AuthError) as exc:
        reason = str(exc) if isinstance(exc, AuthError) else "the first message must be JSON"
        await ws.close(POLICY, reason)
        return None
    async with ws.app.state.sessions() as db:
        user = await repo.get_user(db, principal.username)
        # a customer's tier is their growth value's, from the points ledger
        tier = (await account(db, user.username))["tier"] if user is not None and \
            user.role == Role.CUSTOMER.value else "standard"
    if user is None or user.role != principal.role.value:
        await ws.close(POLICY, "user no longer exists")
        return None
    return WsConnection(ws, principal, user.display_name, tier, list(user.skills))


async def _dispatch(branch: Branch, conn: WsConnection | RemoteConnection,
                    message: dict[str, Any]) -> None:
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in ALLOWED:
        raise BranchError("bad_message", f"unknown message type: {kind!r}")
    if conn.role not in ALLOWED[kind]:
        raise BranchError("wrong_role", f"a {conn.role.value} cannot send {kind}")
    if kind in HOSTED.get(conn.role, ()) and (node := await _elsewhere(branch, conn)):
        assert branch.cluster is not None
        await branch.cluster.tell(node, "forward", user=_who(conn), message=message)
        return
    if kind == "ping":
        await conn.send({"type": "pong"})
    elif kind == "join":
        language = message.get("language")
        if language is not None and not isinstance(language, str):
            raise BranchError("bad_message", "language must be a string")
        await branch.join(conn, _str(message, "service"),
                          digital_human=message.get("with") == "digital_human",
                          language=language)
    elif kind == "leave":
        await branch.leave(conn)
    elif kind == "ask_for":
        who = message.get("who")
        if who not in ("teller", "digital_human"):
            raise BranchError("bad_message", "ask_for needs who: teller or digital_human")
        await branch.ask_for(conn, str(who))
    elif kind == "status":
        skills = message.get("skills")
        if skills is not None and not (isinstance(skills, list)
                                       and all(isinstance(s, str) for s in skills)):
            raise BranchError("bad_message", "skills must be a list of service ids")
        await branch.set_status(conn, _str(message, "status"), skills)
    elif kind == "accept":
        service = message.get("service")
        await branch.accept(conn, service if isinstance(service, str) else None)
    elif kind == "end":
        await branch.end_by_teller(conn, _str(message, "outcome"))
    elif kind == "offer":
        session_id = _str(message, "session_id")
        sdp = await branch.offer(conn, session_id, message.get("sdp"))
        await conn.send({"type": "answer", "session_id": session_id, "sdp": sdp})
    elif kind in ("lobby_enter", "move", "lobby_leave"):
        await _lobby(branch, conn, kind, message)
    else:
        await _business(branch, conn, kind, message)


async def _lobby(branch: Branch, conn: WsConnection | RemoteConnection, kind: str,
                 message: dict[str, Any]) -> None:
    try:
        if kind == "lobby_enter":
            await conn.send(branch.lobby.enter(conn.username, conn.display_name, message))
            if branch.rewards is not None:  # the day's first visit earns
                await branch.rewards.award(conn.username, "lobby_visit", "")
        elif kind == "move":
            branch.lobby.move(conn.username, message)
        else:
            branch.lobby.leave(conn.username)
    except LobbyError as exc:
        raise BranchError("bad_message", str(exc)) from exc


async def _business(branch: Branch, conn: WsConnection | RemoteConnection, kind: str,
                    message: dict[str, Any]) -> None:
    """Commands of a business flow; the flow's refusals come back as ``flow`` errors."""
    business = branch.business
    try:
        if kind == "start_flow":
            await business.start_flow(conn, _str(message, "flow"))
        elif kind == "push":
            await business.push(conn, _str(message, "document"))
        elif kind == "verify_identity":
            await business.verify_identity(conn)
        elif kind == "advance":
            await business.advance(conn)
        elif kind == "back":
            await business.back(conn)
        elif kind == "show_id":
            await business.show_id(conn, _str(message, "name"), _str(message, "id_number"))
        elif kind == "sign":
            await business.sign(conn, _str(message, "name"), _str(message, "document_sha256"),
                                _str(message, "image"))
        elif kind == "answer":
            await business.answer(conn, _str(message, "question"), _str(message, "option"))
        elif kind == "acknowledge":
            await business.acknowledge(conn, _str(message, "text"))
    except DomainError as exc:
        raise BranchError("flow", str(exc)) from exc


def _str(message: dict[str, Any], name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value:
        raise BranchError("bad_message", f"{message.get('type')} needs a string {name!r}")
    limit = MAX_CHARS.get(name)
    if limit is not None and len(value) > limit:
        raise BranchError("bad_message", f"{message.get('type')}'s {name!r} is longer than "
                                         f"{limit} characters")
    return value


def origin_allowed(ws: WebSocket, settings: Settings) -> bool:
    """A page may open the socket only from the server's own origin or one the settings
    list; a client that sends no Origin is not a browser page and is not asked."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    allowed = {o.strip().rstrip("/").lower() for o in settings.ws_origins.split(",") if o.strip()}
    if origin.rstrip("/").lower() in allowed:
        return True
    host = ws.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower() and host != ""


@router.websocket("/ws")
async def signaling(ws: WebSocket) -> None:
    settings: Settings = ws.app.state.settings
    branch: Branch = ws.app.state.branch
    limits: Limits = ws.app.state.limits
    address = client_address(ws)
    await ws.accept()
    if not origin_allowed(ws, settings):
        await ws.close(POLICY, "this page's origin may not open the branch's socket")
        return
    if not await limits.open_socket(address):
        await ws.close(POLICY, "too many connections from your address")
        return
    try:
        await _serve(ws, settings, branch)
    finally:
        await limits.close_socket(address)


async def _serve(ws: WebSocket, settings: Settings, branch: Branch) -> None:
    conn = await _authenticate(ws, settings)
    if conn is None:
        return
    older = branch.replaces(conn)
    try:
        welcome = await branch.connect(conn)
    except QueueUnavailable:
        await branch.disconnect(conn)
        await conn.close(TRY_AGAIN, "the branch is restarting a service; connect again soon")
        return
    if older is not None and isinstance(older, WsConnection):
        await older.close(REPLACED, "signed in elsewhere")
    await conn.send(welcome)
    standing = asyncio.create_task(_while_standing(conn, ws.app.state.standings))
    allowance = SocketAllowance(settings)  # this socket's, whatever else the person has open
    try:
        while True:
            frame = await ws.receive()
            if frame["type"] == "websocket.disconnect":
                break
            text = frame.get("text")
            if text is None:
                await conn.send(error("bad_message", "send JSON text frames, not binary"))
                continue
            if len(text.encode()) > settings.max_ws_message_bytes:
                await conn.close(TOO_BIG, "message too big")
                break
            try:
                message = parse(text)
            except BranchError as exc:
                await conn.send(error(exc.code, str(exc)))
                continue
            kind = message.get("type")
            wait = allowance.take(kind) if isinstance(kind, str) else None
            if wait is not None:
                await conn.send(rate_limited(str(kind), wait))
                continue
            try:
                await _dispatch(branch, conn, message)
            except BranchError as exc:
                await conn.send(error(exc.code, str(exc)))
            except QueueUnavailable as exc:  # Redis restarting: nothing changed, try again
                await conn.send(error("busy", str(exc)))
            except RecursionError:  # a RuntimeError, but ours, not the socket's
                log.exception("handling %s from %s", message.get("type"), conn.username)
                await conn.send(error("internal", "the branch could not do that; "
                                                  "please try again"))
            except (WebSocketDisconnect, RuntimeError):
                raise
            except Exception:  # a bug of ours: say so, keep the person's connection and call
                log.exception("handling %s from %s", message.get("type"), conn.username)
                await conn.send(error("internal", "the branch could not do that; "
                                                  "please try again"))
    except (WebSocketDisconnect, RuntimeError):
        pass  # closed by the peer mid-send
    finally:
        standing.cancel()
        await branch.disconnect(conn)


async def _while_standing(conn: WsConnection, standings: Standings) -> None:
    """Close the socket once its login no longer stands (demoted, deleted, signed out, past
    the login's maximum life); the receive loop then ends it as a drop."""
    while True:
        await asyncio.sleep(max(standings.cache_s, 1.0))
        try:
            await standings.check(conn.principal)
        except AuthError as exc:
            await conn.close(POLICY, str(exc))
            return
        except Exception as exc:  # the database away for a moment: the socket stays
            log.warning("cannot check %s's login now (%r); asking again", conn.username, exc)
