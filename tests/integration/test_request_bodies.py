"""Request bodies against a real ``vbank serve``: each route class has a size limit, refused
with 413 before the body is read in full (``Content-Length`` or chunks), and JSON text must be
valid Unicode (400 ``bad_text``), never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from vbank.serverproc import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("bodies") / "data",
                        env={"VBANK_MEDIA_WORKERS": "0"})
    yield proc
    proc.stop()


def post(server: ServerProcess, path: str, body: bytes | Iterator[bytes],
         content_type: str = "application/json") -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1{path}", content=body,
                      headers={"Content-Type": content_type})


def login_body(password_bytes: int) -> bytes:
    return b'{"username": "bob", "password": "' + b"x" * password_bytes + b'"}'


def chunks(body: bytes, size: int = 1024) -> Iterator[bytes]:
    """``body`` sent in chunks (no ``Content-Length``)."""
    for start in range(0, len(body), size):
        yield body[start:start + size]


def test_an_oversized_login_body_is_413_and_the_server_still_serves(
        server: ServerProcess) -> None:
    r = post(server, "/auth/login", login_body(8 * 1024 * 1024))
    assert r.status_code == 413
    assert r.json() == {"detail": "request body too large: at most 4096 bytes here",
                        "code": "body_too_large"}
    assert server.login("bob")


def test_an_oversized_body_in_chunks_is_413(server: ServerProcess) -> None:
    r = post(server, "/auth/login", chunks(login_body(64 * 1024)))
    assert r.status_code == 413
    assert r.json()["code"] == "body_too_large"
    assert server.login("bob")


def test_a_body_in_chunks_within_the_limit_is_served(server: ServerProcess) -> None:
    r = post(server, "/auth/login", chunks(b'{"username": "bob", "password": "bob"}', 8))
    assert r.status_code == 200
    assert r.json()["username"] == "bob"


def test_other_routes_take_bodies_up_to_their_own_larger_limit(server: ServerProcess) -> None:
    filler = b'{"item_id": "' + b"x" * 60_000 + b'", "quantity": 1}'
    assert post(server, "/mall/redemptions", filler).status_code == 401  # read, then no token
    r = post(server, "/mall/redemptions", filler + b" " * 6_000)  # past 65536
    assert r.status_code == 413
    assert r.json()["detail"] == "request body too large: at most 65536 bytes here"


@pytest.mark.parametrize("body", [
    b'{"username": "\\ud800", "password": "x"}',  # a lone surrogate, escaped
    b'{"username": "bob\\uDC00", "password": "x"}',  # one the model would accept
    b'{"username": "bob", "password": "x", "\\ud800": 1}',  # in a key
    b'{"username": "bob", "password": ["\xed\xa0\x80"]}',  # encoded as bytes: not UTF-8
    b'{"username": "bob", "password": "\xff"}',  # not UTF-8
], ids=["escaped", "valid-otherwise", "key", "encoded", "not-utf8"])
def test_text_that_is_not_unicode_is_refused_with_bad_text(
        server: ServerProcess, body: bytes) -> None:
    r = post(server, "/auth/login", body)
    assert r.status_code == 400
    assert r.json() == {"detail": "the request's JSON is not valid Unicode text (UTF-8, "
                                  "no lone surrogates)", "code": "bad_text"}


def test_a_surrogate_pair_is_text_like_any_other(server: ServerProcess) -> None:
    r = post(server, "/auth/login", b'{"username": "bob\\ud83d\\ude00", "password": "x"}')
    assert r.status_code == 401


def test_a_body_in_another_content_type_is_a_422_whatever_its_bytes(
        server: ServerProcess) -> None:
    r = post(server, "/auth/login", b"\xff\xfe\xed\xa0\x80", content_type="text/plain")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body"]


def test_the_refusals_are_in_the_openapi_document(server: ServerProcess) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/api/v1/auth/login", "/api/v1/mall/redemptions"):
        answers = spec["paths"][path]["post"]["responses"]
        assert "bad_text" in answers["400"]["description"]
        assert "body_too_large" in answers["413"]["description"]
