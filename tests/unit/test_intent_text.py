"""Spoken Chinese is normalised before its intent is looked up: no fillers, written words,
no punctuation (a recogniser may or may not put it)."""

from __future__ import annotations

import pytest

from vbank.speech.intents import normalise_zh


@pytest.mark.parametrize(("heard", "meant"), [
    ("嗯，我想开户", "我想开户"),
    ("嗯嗯那个我想开户", "我想开户"),
    ("啊，那个，就是，我要挂失。", "我要挂失"),
    ("你说啥?我这边有点吵。", "你说什么 我这边有点吵"),
    ("咋开通手机银行", "怎么开通手机银行"),
    ("我想问，嗯，定期利息多少", "我想问 定期利息多少"),
])
def test_fillers_colloquial_words_and_punctuation_go(heard: str, meant: str) -> None:
    assert normalise_zh(heard) == meant


@pytest.mark.parametrize("said", ["这个卡怎么激活", "就是这张卡丢了", "那天我来过"])
def test_words_that_mean_something_stay(said: str) -> None:
    # 这个/就是 are fillers only when a pause (a comma) follows them
    assert normalise_zh(said) == said


def test_nothing_but_fillers_is_nothing() -> None:
    assert normalise_zh("嗯，那个，") == ""
