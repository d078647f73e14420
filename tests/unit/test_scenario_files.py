"""Scenario files are checked completely before anything runs; errors name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbank.scenario import ScenarioError
from vbank.scenario.model import load

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
