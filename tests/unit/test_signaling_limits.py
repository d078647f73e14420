"""Limits on one signaling socket without a server (issue 18, finding 9): the token bucket,
each message kind's allowance, text lengths and the SDP offer's media sections."""

from __future__ import annotations

import pytest

from vbank.api.ws import ALLOWED, MAX_CHARS, _str, rate_limited
from vbank.branch import BranchError
from vbank.config import Settings
from vbank.limits import MESSAGE_KINDS, SocketAllowance, TokenBucket
from vbank.rtc import BadSdp
from vbank.rtc.call import check_offer_sdp


def test_a_bucket_lets_a_burst_through_then_its_rate() -> None:
    bucket = TokenBucket(3, 0.5)
    assert [bucket.take(10.0) for _ in range(3)] == [None, None, None]
    assert bucket.take(10.0) == pytest.approx(2.0)  # one token comes back in 2 s
    assert bucket.take(11.0) == pytest.approx(1.0)  # a refusal spends nothing
    assert bucket.take(12.0) is None
    assert bucket.take(100.0) is None  # refilled, never past its capacity
    assert [bucket.take(100.0) for _ in range(3)] == [None, None, pytest.approx(2.0)]


def test_every_message_type_draws_on_an_allowance() -> None:
    assert set(MESSAGE_KINDS) == set(ALLOWED)


def test_join_and_leave_share_an_allowance_other_kinds_keep_theirs() -> None:
    allowance = SocketAllowance(Settings(ws_joins_per_10s=4))
    taken = [allowance.take(kind, now=0.0) for kind in ("join", "leave") * 3]
    assert taken[:4] == [None] * 4
    assert taken[4] == pytest.approx(2.5)  # four in ten seconds: one every 2.5 s
    assert allowance.take("lobby_enter", now=0.0) is not None
    assert allowance.take("offer", now=0.0) is None
    assert allowance.take("move", now=0.0) is None
    assert allowance.take("no such type", now=0.0) is None  # refused later as bad_message
    assert allowance.take("join", now=2.5) is None


def test_the_defaults_let_the_lobby_move_at_5_hz_and_a_browser_renegotiate() -> None:
    allowance = SocketAllowance(Settings())
    # a minute of the 3D client: five moves a second and a ping every 15 s
    assert all(allowance.take("ping" if i % 75 == 0 else "move", now=i / 5) is None
               for i in range(300))
    # a browser rebuilding a broken connection backs off 1, 2, 4, 8 s
    assert all(allowance.take("offer", now=t) is None for t in (0.0, 1.0, 3.0, 7.0, 15.0))
    # ten questions answered by quick clicks, with the teller's accept and end
    assert all(allowance.take(kind, now=i * 0.3) is None for i, kind in
               enumerate(["accept", *["answer"] * 10, "end"]))


def test_rate_limited_says_which_message_and_how_long_to_wait() -> None:
    assert rate_limited("offer", 1.23456) == {
        "type": "error", "code": "rate_limited", "refused": "offer", "retry_after_s": 1.23,
        "message": "too many offer messages; nothing was done, try again in 1.23 s"}


@pytest.mark.parametrize(("field", "limit"), [("name", 100), ("text", 500)])
def test_texts_a_customer_writes_are_limited(field: str, limit: int) -> None:
    assert MAX_CHARS[field] == limit
    message = {"type": "acknowledge", field: "x" * limit}
    assert _str(message, field) == "x" * limit
    message[field] += "x"
    with pytest.raises(BranchError) as refused:
        _str(message, field)
    assert refused.value.code == "bad_message"
    assert str(refused.value) == f"acknowledge's {field!r} is longer than {limit} characters"


def offer(sections: int) -> str:
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0"]
    for _ in range(sections):
        lines += ["m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0"]
    return "\r\n".join(lines) + "\r\n"


def test_an_offer_may_have_at_most_so_many_media_sections() -> None:
    assert check_offer_sdp(offer(4), 32_000, 4) == offer(4)
    with pytest.raises(BadSdp, match="the offer has 24 media sections; at most 4 are"):
        check_offer_sdp(offer(24), 32_000, 4)
    with pytest.raises(BadSdp, match="no media section"):
        check_offer_sdp(offer(0), 32_000, 4)
    with pytest.raises(BadSdp, match="larger than 1024 bytes"):
        check_offer_sdp(offer(4) + "a=x" * 400, 1024, 4)


def test_the_sdp_settings_cannot_exceed_what_a_media_node_accepts() -> None:
    with pytest.raises(ValueError):
        Settings(max_sdp_media=17)
    with pytest.raises(ValueError):
        Settings(max_sdp_bytes=40_000)
