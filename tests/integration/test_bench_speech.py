"""``vbank bench speech --offline``: the figures' shape on real recordings, never timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vbank.cli import main


def test_offline_speech_bench_reports_word_errors_and_splits_per_condition(
        tmp_path: Path) -> None:
    out = tmp_path / "speech.json"
    assert main(["bench", "speech", "--offline", "--conditions", "real_paused",
                 "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["bench"] == "speech" and figures["mode"] == "offline"
    assert list(figures["conditions"]) == ["real_paused"]
    paused = figures["conditions"]["real_paused"]
    assert paused["utterances"] == 5  # the LibriVox sentences only
    assert 0.0 <= paused["wer"] <= 1.0
    assert paused["intent_accuracy"] is None and "no intent" in paused["notes"]
    assert set(paused["turns_wrongly_split"]) == {"model_and_words", "model", "silence"}
    assert all(0 <= n <= 5 for n in paused["turns_wrongly_split"].values())
    assert paused["cpu_s_per_utterance"] > 0
    assert len(paused["per_utterance"]) == 5 and "live" not in paused
    assert Path(figures["models"]["asr"]["path"]).is_dir()
    assert figures["models"]["end_of_turn"]["bytes"] > 0


def test_an_unknown_condition_is_refused_before_any_model_loads(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "speech", "--offline", "--conditions", "real,shouting"])
    assert exit_.value.code == 2
    assert "unknown conditions: shouting" in capsys.readouterr().err
