"""The gate every HTTP request body passes before a route sees it: a size limit per route
class, and JSON that is valid Unicode.

FastAPI reads a whole body into memory before any rule looks at it: one unauthenticated 8 MB
login body cost the server hundreds of megabytes. ``BodyLimit`` is a pure ASGI middleware in
front of the app. A body longer than its route's limit is refused with 413 — at once on its
``Content-Length``, or, sent in chunks without one, as soon as the chunks read pass the limit,
reading no further. A JSON body that is not UTF-8 or holds a lone surrogate is refused with
400 ``bad_text`` (see ``vbank.api.textcheck``). Any other body, at most the limit, is
handed to the app as read.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vbank.api.textcheck import BAD_TEXT, valid_json_text

TOO_LARGE = "body_too_large"
NOT_UNICODE = "the request's JSON is not valid Unicode text (UTF-8, no lone surrogates)"


class BodyLimit:
    """Limit request bodies: ``routes`` maps path prefixes to their limits in bytes (the
    longest matching prefix wins), every other path gets ``default``."""

    def __init__(self, app: ASGIApp, default: int,
                 routes: Sequence[tuple[str, int]] = ()) -> None:
        self.app = app
        self.default = default
        self.routes = sorted(routes, key=lambda route: len(route[0]), reverse=True)

    def limit(self, path: str) -> int:
        """The largest body ``path`` takes, in bytes."""
        return next((limit for prefix, limit in self.routes if path.startswith(prefix)),
                    self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # gone before the body was whole
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(limit)(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _is_json(scope) and not valid_json_text(body):
            await JSONResponse({"detail": NOT_UNICODE, "code": BAD_TEXT},
                               status_code=400)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read, then whatever comes next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body too large: at most {limit} bytes here",
                         "code": TOO_LARGE}, status_code=413)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:  # the server refuses it first; if not, the count decides
                return None
    return None


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would parse the body as JSON: no content type, or a JSON one."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return not kind or kind == b"application/json" or (
                kind.startswith(b"application/") and kind.endswith(b"+json"))
    return True
