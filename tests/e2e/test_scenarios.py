"""The shipped scenarios, run as a user runs them: ``vbank scenario run scenes/scenarios/*``.

Real speech both ways (Piper and real recordings → WebRTC → Whisper), the digital human,
tellers, drops.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.browsers import ARTIFACTS
from vbank.scenario.model import load as load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenes" / "scenarios").glob(
    "*.yaml"))


@pytest.mark.timeout(1500)  # twenty-odd whole journeys with real speech, one after another
def test_the_shipped_scenarios_pass(tmp_path: Path) -> None:
    assert len(SCENARIOS) >= 5
    out = tmp_path / "scenarios.json"
    run = subprocess.run([sys.executable, "-m", "vbank", "scenario", "run", *map(str, SCENARIOS),
                          "--json", str(out)], capture_output=True, text=True, timeout=1400,
                         check=False)
    print(run.stdout, run.stderr)  # the step lines, shown when this fails
    assert run.returncode == 0
    assert run.stdout.splitlines()[-1] == f"{len(SCENARIOS)} passed, 0 failed"
    report = json.loads(out.read_text())
    # with the digital human, every customer turn is answered by voice: a voice-to-voice
    # latency for each (a teller may answer a customer's words by a click instead)
    with_agent = {s.id for path in SCENARIOS for s in [load_scenario(path)]
                  if not any(a["kind"] == "teller" for a in s.actors.values())}
    turns = [t for s in report["scenarios"] if s["scenario"] in with_agent for t in s["turns"]]
    assert turns and all(t["voice_to_voice_ms"] is not None for t in turns), turns
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "scenarios.json").write_text(out.read_text())
