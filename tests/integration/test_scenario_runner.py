"""``vbank scenario run``: exit codes, the report, and failures that say what was seen."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vbank.serverproc import start_server

TELLER_CALL = """\
scenario: teller-call
description: a customer is served by a teller who greets them; they answer
service: account_opening
actors:
  customer: {kind: customer, name: Li Wei}
  teller: {kind: teller, name: Wang Fang}
steps:
  - customer: join
  - expect: {queue_position: 1}
  - teller: accept
  - expect: {paired_with: teller}
  - teller: {say: "Please hold your identity card to the camera."}
  - expect: {heard: "(?i)identity card", within_s: 20}
  - customer: {say: "Here is my identity card."}
  - expect: {actor: teller, heard: "(?i)identity card", within_s: 20}
  - teller: {say: "Thank you, that is all I need."}
  - customer: leave
assert:
  - recording: {min_duration_s: 3, audio: true, video: true}
"""

WRONG_SENTENCE = """\
scenario: wrong-sentence
service: account_opening
actors:
  customer: {kind: customer, name: Li Wei}
  teller: {kind: teller, name: Wang Fang}
steps:
  - customer: join
  - teller: accept
  - expect: {paired_with: teller}
  - teller: {say: "Please hold your identity card to the camera."}
  - expect: {heard: "(?i)interest rate", within_s: 8}
  - customer: leave
"""

LATER_ISSUE = """\
scenario: later-issue
service: loan_signing
actors:
  customer: {kind: customer, name: Li Wei}
  teller: {kind: teller, name: Wang Fang}
steps:
  - customer: join
  - teller: accept
  - customer: {redeem: {item: mug, quantity: 1}}
"""

NEEDS_AVATAR = """\
scenario: needs-avatar
service: general_enquiry
setup: {digital_human: on}
actors:
  customer: {kind: customer, name: Li Wei}
steps:
  - customer: join
"""


def vbank(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vbank", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_an_invalid_file_stops_the_run_before_anything_runs(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(TELLER_CALL)
    bad = tmp_path / "bad.yaml"
    bad.write_text(TELLER_CALL.replace("teller: accept", "teller: dance"))
    run = vbank("scenario", "run", str(good), str(bad), timeout=60)
    assert run.returncode == 2
    assert f"{bad}:10: unknown teller action 'dance'" in run.stderr
    assert "scenario teller-call" not in run.stdout and "passed" not in run.stdout


def test_a_run_passes_what_happened_and_fails_what_did_not(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")  # a demo server: the demo admin sets up actors
    try:
        files = []
        for name, text in (("a", TELLER_CALL), ("b", WRONG_SENTENCE), ("c", LATER_ISSUE),
                           ("d", NEEDS_AVATAR)):
            files.append(tmp_path / f"{name}.yaml")
            files[-1].write_text(text)
        out = tmp_path / "report.json"
        run = vbank("scenario", "run", *map(str, files), "--server", server.url,
                    "--json", str(out))
    finally:
        server.stop()
    lines = run.stdout.splitlines()
    assert run.returncode == 1, run.stdout + run.stderr
    assert lines[-1] == "1 passed, 3 failed"
    assert "PASS teller-call" in run.stdout
    # each failure says what was expected and what was seen
    wrong = run.stdout[run.stdout.index("scenario wrong-sentence"):]
    assert "heard: recognised" in wrong and "identity" in wrong
    assert "(1 later steps not run)" in wrong
    assert "redeem is not supported yet" in run.stdout
    assert "setup FAIL" in run.stdout and "not loaded" in run.stdout

    report = json.loads(out.read_text())
    assert (report["passed"], report["failed"]) == (1, 3)
    first = report["scenarios"][0]
    assert first["passed"] and all(step["ok"] for step in first["steps"])
    assert [a["ok"] for a in first["asserts"]] == [True]
    # the customer's turn got the teller's spoken reply: a voice-to-voice latency
    [turn] = first["turns"]
    assert turn["text"] == "Here is my identity card." and turn["voice_to_voice_ms"] > 0
    failed = report["scenarios"][1]["steps"][-1]
    assert not failed["ok"] and failed["line"] == 11 and "interest rate" in failed["action"]
