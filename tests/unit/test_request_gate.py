"""The request gate without a server: which text is Unicode, which bodies pass ``BodyLimit``,
which proxies the settings take."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import pytest
from pydantic import ValidationError

from vbank.api.bodylimit import BodyLimit
from vbank.api.textcheck import valid_json_text, valid_text
from vbank.config import Settings


@pytest.mark.parametrize("value", [
    "plain", "中文", "\U0001f600", {"a": ["b", {"c": 1.5}], "d": None}, [1, True, None], 7,
])
def test_valid_unicode_passes(value: object) -> None:
    assert valid_text(value)


@pytest.mark.parametrize("value", [
    "\ud800", "ok\udfff", {"\udc00": 1}, {"a": [1, {"b": "x\ud83d"}]}, ("\ud800",),
])
def test_a_lone_surrogate_anywhere_fails(value: object) -> None:
    assert not valid_text(value)


def test_deep_nesting_does_not_overflow_the_walk() -> None:
    deep: Any = "\ud800"
    for _ in range(100_000):
        deep = [deep]
    assert not valid_text(deep)


@pytest.mark.parametrize(("body", "valid"), [
    (b'{"name": "Bob"}', True),
    (b'{"name": "\\ud83d\\ude00"}', True),  # a pair is one character
    (b'{"name": "\\\\ud800"}', True),  # an escaped backslash, then letters
    (b'{"name": "\\ud800"}', False),
    (b'{"name": "\\uDBFF"}', False),
    (b'{"name": "\xed\xa0\x80"}', False),  # a surrogate encoded: not UTF-8
    (b'{"name": "\xff"}', False),
    (b'{"name": "\\ud800"', True),  # not JSON: the parser says so, not this check
    (b"[" * 5000 + b'"\\ud800"', True),  # too deep to parse: likewise
])
def test_json_bodies(body: bytes, valid: bool) -> None:
    assert valid_json_text(body) is valid


class Exchange:
    """One request through ``BodyLimit`` to an app that records what it received."""

    def __init__(self, messages: list[dict[str, Any]],
                 headers: list[tuple[bytes, bytes]]) -> None:
        self.incoming = list(messages)
        self.headers = headers
        self.read = 0  # messages the middleware took from the client
        self.sent: list[MutableMapping[str, Any]] = []
        self.app_body: bytes | None = None

    async def receive(self) -> dict[str, Any]:
        self.read += 1
        return self.incoming.pop(0) if self.incoming else {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.app_body = message["body"]
        assert not message["more_body"]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def run(self, path: str = "/api/v1/auth/login") -> tuple[int, dict[str, Any]]:
        gate = BodyLimit(self.app, default=100, routes=[("/api/v1/auth/", 40)])
        scope = {"type": "http", "path": path, "headers": self.headers, "method": "POST"}
        await gate(scope, self.receive, self.send)
        status = self.sent[0]["status"]
        body = b"".join(m.get("body", b"") for m in self.sent[1:])
        return status, json.loads(body) if body else {}


def chunked(*parts: bytes) -> list[dict[str, Any]]:
    return [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
            for i, p in enumerate(parts)]


async def test_a_declared_length_past_the_limit_is_refused_unread() -> None:
    exchange = Exchange(chunked(b"x" * 41), [(b"content-length", b"41")])
    status, body = await exchange.run()
    assert (status, body["code"]) == (413, "body_too_large")
    assert body["detail"] == "request body too large: at most 40 bytes here"
    assert exchange.read == 0 and exchange.app_body is None


async def test_chunks_are_read_only_until_they_pass_the_limit() -> None:
    exchange = Exchange(chunked(b"x" * 30, b"x" * 30, b"x" * 30), [])
    status, _ = await exchange.run()
    assert status == 413
    assert exchange.read == 2 and exchange.app_body is None


async def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    exchange = Exchange(chunked(b'{"a":', b' "b"}'), [(b"content-type", b"application/json")])
    assert (await exchange.run())[0] == 204
    assert exchange.app_body == b'{"a": "b"}'


async def test_each_route_class_has_its_own_limit() -> None:
    exchange = Exchange(chunked(b"x" * 90), [(b"content-type", b"text/plain")])
    assert (await exchange.run("/api/v1/mall/redemptions"))[0] == 204
    exchange = Exchange(chunked(b"x" * 101), [])
    assert (await exchange.run("/api/v1/mall/redemptions"))[0] == 413


@pytest.mark.parametrize(("content_type", "status"), [
    (None, 400), (b"application/json", 400), (b"application/merge-patch+json; charset=utf-8", 400),
    (b"text/plain", 204),  # not parsed as JSON by FastAPI: not checked as JSON either
])
async def test_json_that_is_not_unicode_is_refused(content_type: bytes | None,
                                                    status: int) -> None:
    headers = [] if content_type is None else [(b"content-type", content_type)]
    exchange = Exchange(chunked(b'{"name": "\\ud800"}'), headers)
    answer, body = await exchange.run()
    assert answer == status
    if status == 400:
        assert body["code"] == "bad_text"


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = Settings(trusted_proxies=" 127.0.0.1, 10.0.0.0/8,::1 ")
    assert settings.trusted_proxy_list == ["127.0.0.1", "10.0.0.0/8", "::1"]
    assert Settings().trusted_proxy_list == []
    for wrong in ("*", "proxy.example.com", "10.0.0.300"):
        with pytest.raises(ValidationError, match="is not an address or network"):
            Settings(trusted_proxies=wrong)
