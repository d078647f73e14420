"""Scenario files are checked completely before anything runs; errors name file and line."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from vbank.scenario import ScenarioError
from vbank.scenario.model import load
from vbank.scenario.runner import describe, run
from vbank.speech.audio import RATE
from vbank.speech.conditions import write_wav

SPEC_EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / \
    "loan-signing-digital-human.yaml"

GOOD = """\
scenario: faq
service: general_enquiry
actors:
  customer: {kind: customer, name: Li Wei}
steps:
  - customer: join
  - expect: {paired_with: digital_human, within_s: 20}
  - customer: {say: "What are your opening hours?"}
  - expect: {caption: "(?i)open"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_the_specs_example_is_read_whole() -> None:
    scenario = load(SPEC_EXAMPLE)
    assert scenario.id == "loan-signing-digital-human" and scenario.service == "loan_signing"
    assert [s.action for s in scenario.steps][:4] == ["join", "expect", "expect", "say"]
    assert scenario.steps[3].argument == "My name is Li Wei"
    assert scenario.steps[1].actor == "customer" and scenario.steps[3].line == 21
    assert scenario.actors["teller"]["skills"] == ["loan_signing"]
    assert len(scenario.asserts) == 4


def test_a_good_small_file(tmp_path: Path) -> None:
    scenario = load(write(tmp_path, GOOD))
    assert scenario.language == "en" and len(scenario.steps) == 4


@pytest.mark.parametrize("change,line,reason", [
    (("customer: join", "customer: jump"), 6, "unknown customer action 'jump'"),
    (("customer: join", "banker: join"), 6, "unknown actor 'banker'"),
    (("{say: \"What are your opening hours?\"}", "{say: 42}"), 8, "say must be a str"),
    (("{caption: \"(?i)open\"}", "{seen: x}"), 9, "unknown expectation 'seen'"),
    (("{caption: \"(?i)open\"}", "{answered: q1}"), 9, "expect answered must be a dict"),
    (("{caption: \"(?i)open\"}", "{answered: {q1: 2}}"), 9, "expect answered: {QUESTION"),
    (("service: general_enquiry", "service: mortgages"), 2, "unknown service 'mortgages'"),
    (("scenario: faq", "scenario: FAQ one"), 1, "scenario id must match"),
    (("kind: customer", "kind: robot"), 4, "kind must be customer or teller"),
    (("within_s: 20", "within_s: soon"), 7, "expect within_s must be a"),
    (("customer: join", "customer: {say: hi, wait: 1}"), 6,
     "an action is one name with its argument"),
])
def test_mistakes_are_named_with_their_line(tmp_path: Path, change: tuple[str, str],
                                            line: int, reason: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load(write(tmp_path, GOOD.replace(*change)))
    assert error.value.line == line, str(error.value)
    assert reason in str(error.value)
    assert str(error.value).startswith(f"{tmp_path / 's.yaml'}:{line}: ")


def test_not_yaml_and_missing_parts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not YAML"):
        load(write(tmp_path, "scenario: [unclosed"))
    with pytest.raises(ScenarioError, match="missing 'steps'"):
        load(write(tmp_path, "scenario: x\nservice: general_enquiry\nactors: {}\n"))


MALL = """\
scenario: mall
service: risk_assessment
setup:
  mall_items:
    - {id: mug, name: Branch mug, points: 120, stock: 3, per_customer_limit: 1}
    - id: tea
      name: {en: Green tea, zh: 绿茶}
      points: 40
      stock: 0
actors:
  customer: {kind: customer, name: Zhang Min, points: 100}
  teller: {kind: teller, name: Wang Fang}
steps:
  - customer: {redeem: {item: mug}}
  - customer: {redeem: {item: tea, quantity: 2, refused: "(?i)out of stock"}}
  - expect: {event: redeemed}
  - expect: {points_balance: {min: 0, max: 100}, within_s: 5}
assert:
  - points: {earned: 0}
  - points: {earned: {min: 0}, actor: customer}
  - ledger: consistent
"""


def test_the_mall_is_read_whole(tmp_path: Path) -> None:
    scenario = load(write(tmp_path, MALL))
    mug, tea = scenario.setup["mall_items"]
    assert mug == {"id": "mug", "name": "Branch mug", "points": 120, "stock": 3,
                   "per_customer_limit": 1}
    assert tea["name"] == {"en": "Green tea", "zh": "绿茶"} and tea["stock"] == 0
    assert scenario.actors["customer"]["points"] == 100
    first, second = scenario.steps[:2]
    assert (first.action, first.argument) == ("redeem", {"item": "mug", "quantity": 1})
    assert second.argument == {"item": "tea", "quantity": 2, "refused": "(?i)out of stock"}
    assert scenario.steps[3].argument["points_balance"] == {"min": 0, "max": 100}
    assert [a for _, a in scenario.asserts][2] == {"ledger": "consistent"}


@pytest.mark.parametrize("change,line,reason", [
    (("per_customer_limit: 1}", "per_customer_limit: 1, colour: red}"), 5,
     "a mall item: unknown key 'colour'"),
    (("{id: mug,", "{id: Mug Large,"), 5, "mall item Mug Large: id must match"),
    (("points: 120", "points: 0"), 5, "mall item mug: points must be 1 or more"),
    (("points: 120", "points: lots"), 5, "a mall item: points must be a int, not str"),
    (("stock: 3,", ""), 5, "a mall item: missing 'stock'"),
    (("id: tea", "id: mug"), 6, "mall item mug: the id is used twice"),
    (("stock: 0", "stock: 0\n      tier: diamond"), 10, "tier must be one of standard"),
    (("{en: Green tea, zh: 绿茶}", "{en: Green tea, fr: Thé vert}"), 7,
     "a mall item (tea): name must be a text or {en, zh}"),
    (("  mall_items:\n", "  mall_items: {id: mug}\n  old:\n"), 4,
     "setup mall_items must be a list"),
    (("{redeem: {item: mug}}", "{redeem: {quantity: 1}}"), 14, "redeem: missing 'item'"),
    (("{redeem: {item: mug}}", "{redeem: mug}"), 14, "redeem must be a dict, not str"),
    (("{redeem: {item: mug}}", "{redeem: {item: Mug!}}"), 14, "redeem: item must be a mall"),
    (("{redeem: {item: mug}}", "{redeem: {item: mug, quantity: 0}}"), 14,
     "redeem: quantity must be 1 to 100"),
    (("{redeem: {item: mug}}", "{redeem: {item: mug, quantity: two}}"), 14,
     "redeem: quantity must be a int"),
    (("{redeem: {item: mug}}", "{redeem: {item: mug, colour: red}}"), 14,
     "redeem: unknown key 'colour' (the keys are item, quantity, refused)"),
    (("refused: \"(?i)out of stock\"", "refused: \"(out of stock\""), 15,
     "redeem: refused is not a regex"),
    (("customer: {redeem: {item: mug}}", "teller: {redeem: {item: mug}}"), 14,
     "unknown teller action 'redeem'"),
    (("{min: 0, max: 100}", "{least: 0}"), 17, "'least' is not min or max"),
    (("{min: 0, max: 100}", "lots"), 17, "expect points_balance must be a int or dict"),
    (("points_balance: {min: 0, max: 100}", "points_balance: 5, actor: teller"), 17,
     "points_balance: teller is a teller; only customers have points"),
    (("ledger: consistent", "ledger: balanced"), 21, "the only check is ledger: consistent"),
    (("points: {earned: 0}", "points: {spent: 0}"), 19, "points: unknown key 'spent'"),
    (("points: {earned: 0}", "points: {}"), 19, "points: missing 'earned'"),
    (("points: {earned: 0}", "points: {earned: many}"), 19, "points: earned must be a int or dict"),
    (("actor: customer}", "actor: teller}"), 20, "points: 'teller' is not a customer actor"),
    (("name: Zhang Min, points: 100", "name: Zhang Min, points: -5"), 11,
     "actor customer: points must be 0 or more"),
    (("name: Wang Fang}", "name: Wang Fang, points: 5}"), 12, "points are for customers"),
])
def test_mall_mistakes_are_named_with_their_line(tmp_path: Path, change: tuple[str, str],
                                                 line: int, reason: str) -> None:
    assert change[0] in MALL
    with pytest.raises(ScenarioError) as error:
        load(write(tmp_path, MALL.replace(*change)))
    assert error.value.line == line, str(error.value)
    assert reason in str(error.value), str(error.value)
    assert str(error.value).startswith(f"{tmp_path / 's.yaml'}:{line}: ")


def test_the_shipped_scenarios_are_valid() -> None:
    shipped = sorted((Path(__file__).resolve().parents[2] / "scenes" / "scenarios")
                     .glob("*.yaml"))
    scenarios = [load(path) for path in shipped]
    # one of them earns points in the branch and spends them in the mall
    assert any(s.setup.get("mall_items") and any(step.action == "redeem" for step in s.steps)
               for s in scenarios)


PLAY = """\
scenario: play
service: loan_signing
actors:
  customer: {kind: customer, name: Li Wei}
  teller: {kind: teller, name: Wang Fang}
steps:
  - customer: join
  - teller: accept
  - customer: {play: audio/words.wav}
  - teller: {play: audio/words.wav}
"""


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """A short WAV file at ``audio/words.wav`` beside the scenario file."""
    (tmp_path / "audio").mkdir()
    tone = (8000 * np.sin(np.arange(RATE // 2) * 2 * np.pi * 300 / RATE)).astype(np.int16)
    write_wav(tmp_path / "audio" / "words.wav", tone, 16000)
    return tmp_path / "audio" / "words.wav"


def test_a_recording_is_found_beside_the_scenario_file(tmp_path: Path, recording: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(recording.parent)  # not where the file is looked for
    scenario = load(write(tmp_path, PLAY))
    customer, teller = scenario.steps[2:]
    assert (customer.actor, customer.action, customer.line) == ("customer", "play", 9)
    assert customer.argument == teller.argument == str(recording.resolve())
    assert describe(customer) == "play words.wav"
    lobby = PLAY.replace("name: Li Wei}", "name: Li Wei, client: lobby3d}")
    assert load(write(tmp_path, lobby)).steps[2].action == "play"  # the 3D client speaks too


@pytest.mark.parametrize("change,line,reason", [
    (("{play: audio/words.wav}\n  - teller", "{play: audio/gone.wav}\n  - teller"), 9,
     "play: no file audio/gone.wav (looked for "),
    (("{play: audio/words.wav}\n  - teller", "{play: audio/notes.txt}\n  - teller"), 9,
     "play: audio/notes.txt is not a PCM WAV file (file does not start with RIFF id)"),
    (("teller: {play: audio/words.wav}", "teller: {play: audio/silent.wav}"), 10,
     "play: audio/silent.wav holds no audio"),
    (("teller: {play: audio/words.wav}", "teller: {play: audio}"), 10,
     "play: cannot read audio: Is a directory"),
    (("teller: {play: audio/words.wav}", "teller: {play: 42}"), 10, "play must be a str"),
    (("teller: {play: audio/words.wav}", "teller: play"), 10,
     "play needs an argument: {play: ...}"),
])
def test_a_recording_that_cannot_play_is_named_with_its_line(
        tmp_path: Path, recording: Path, change: tuple[str, str], line: int,
        reason: str) -> None:
    assert change[0] in PLAY
    (recording.parent / "notes.txt").write_text("my notes\n" * 10)
    write_wav(recording.parent / "silent.wav", np.zeros(0, np.int16))
    with pytest.raises(ScenarioError) as error:
        load(write(tmp_path, PLAY.replace(*change)))
    assert str(error.value).startswith(f"{tmp_path / 's.yaml'}:{line}: "), str(error.value)
    assert reason in str(error.value), str(error.value)


def test_a_recording_that_cannot_play_stops_the_run_before_anything_runs(
        tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, PLAY.replace("audio/words.wav}\n  - teller", "audio/x.wav}\n  - teller"))
    out = io.StringIO()
    assert run([bad], [], None, None, out) == 2
    assert f"invalid: {bad}:9: play: no file audio/x.wav" in capsys.readouterr().err
    assert out.getvalue() == ""
