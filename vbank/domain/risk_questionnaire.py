"""Reading the risk questionnaire (the ``questionnaire:`` section of
``scenes/flows/risk_assessment.yaml``), checked completely: every error names the file and
the line."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from vbank.domain.flows import FLOWS_DIR, Text, load_flow
from vbank.domain.risk import (
    ID,
    LETTERS,
    Option,
    Question,
    Questionnaire,
    QuestionnaireError,
    RiskLevel,
)
from vbank.domain.risk_answers import option_words

RISK_FLOW_PATH = FLOWS_DIR / "risk_assessment.yaml"


@cache
def load_questionnaire(path: Path = RISK_FLOW_PATH) -> Questionnaire:
    """The branch's questionnaire, from the risk assessment flow file (read once)."""
    flow = load_flow(path)
    return parse_questionnaire(flow.questionnaire or {}, flow.file)


def parse_questionnaire(node: Mapping[str, Any], source: str) -> Questionnaire:
    """Read and check a ``questionnaire:`` section; errors name ``source`` and the place."""
    return _Parser(source).questionnaire(node)


class _Parser:
    """Checks a questionnaire section; nested mappings from the flow loader know their line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.line: int | None = None  # the line of the innermost mapping being read

    def fail(self, message: str, node: Any = None, key: str | None = None) -> QuestionnaireError:
        line = getattr(node, "line", None) or self.line
        if key is not None:
            line = getattr(node, "lines", {}).get(key, line)
        return QuestionnaireError(self.source, line, message)

    def mapping(self, node: Any, where: str, keys: set[str]) -> Mapping[str, Any]:
        if not isinstance(node, Mapping):
            raise self.fail(f"{where} must be a mapping")
        self.line = getattr(node, "line", None) or self.line
        missing = sorted(keys - set(node))
        if missing:
            raise self.fail(f"{where} needs {missing[0]}", node)
        unknown = sorted(set(node) - keys)
        if unknown:
            raise self.fail(f"{where}: unknown key {unknown[0]!r}", node, unknown[0])
        return node

    def text(self, node: Mapping[str, Any], where: str) -> Text:
        value = node["text"]
        if not isinstance(value, Mapping) or set(value) != {"en", "zh"} or not all(
                isinstance(value[lang], str) and value[lang].strip() for lang in ("en", "zh")):
            raise self.fail(f"{where}.text must give en and zh", node, "text")
        return Text(value["en"].strip(), value["zh"].strip())

    def questionnaire(self, node: Mapping[str, Any]) -> Questionnaire:
        top = self.mapping(node, "questionnaire", {"valid_months", "levels", "questions"})
        months = top["valid_months"]
        if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 60:
            raise self.fail("questionnaire.valid_months must be a whole number of months "
                            "from 1 to 60", top, "valid_months")
        thresholds = self.levels(top)
        raw_questions = top["questions"]
        if not isinstance(raw_questions, list) or not raw_questions:
            raise self.fail("questionnaire.questions must be a non-empty list", top, "questions")
        questions: list[Question] = []
        for i, raw in enumerate(raw_questions):
            question = self.question(raw, f"questionnaire.questions[{i}]")
            if any(q.id == question.id for q in questions):
                raise self.fail(f"question {question.id} appears twice", raw, "id")
            questions.append(question)
        result = Questionnaire(months, thresholds, tuple(questions))
        for answer, expected in (("A", RiskLevel.C1), ("the last option", RiskLevel.C5)):
            total = result.lowest_score if answer == "A" else result.highest_score
            if result.level_for(total) is not expected:
                raise self.fail(f"questionnaire.levels: answering {answer} to every question "
                                f"scores {total}, which is {result.level_for(total).value}; "
                                f"it must be {expected.value}", top, "levels")
        return result

    def levels(self, top: Mapping[str, Any]) -> tuple[int, ...]:
        raw = top["levels"]
        if not isinstance(raw, list) or len(raw) != len(RiskLevel):
            raise self.fail("questionnaire.levels must list C1 to C5, each with the lowest "
                            "total score of the level", top, "levels")
        thresholds: list[int] = []
        for level, entry in zip(RiskLevel, raw, strict=True):
            where = f"questionnaire.levels[{level.rank - 1}]"
            item = self.mapping(entry, where, {"level", "min_score"})
            if item["level"] != level.value:
                raise self.fail(f"{where}.level must be {level.value}: levels go C1 to C5",
                                item, "level")
            minimum = item["min_score"]
            if not isinstance(minimum, int) or isinstance(minimum, bool):
                raise self.fail(f"{where}.min_score must be a whole number", item, "min_score")
            if thresholds and minimum <= thresholds[-1]:
                raise self.fail(f"{where}.min_score must be above {thresholds[-1]} "
                                f"({RiskLevel(f'C{level.rank - 1}').value}'s)", item,
                                "min_score")
            thresholds.append(minimum)
        return tuple(thresholds)

    def question(self, raw: Any, where: str) -> Question:
        node = self.mapping(raw, where, {"id", "text", "options"})
        qid = node["id"]
        if not isinstance(qid, str) or not ID.match(qid):
            raise self.fail(f"{where}.id must be an id like q1", node, "id")
        where = f"question {qid}"
        text = self.text(node, where)
        raw_options = node["options"]
        if not isinstance(raw_options, list) or not 2 <= len(raw_options) <= len(LETTERS):
            raise self.fail(f"{where}.options must list 2 to {len(LETTERS)} options", node,
                            "options")
        options: list[Option] = []
        for letter, raw_option in zip(LETTERS, raw_options, strict=False):
            item = self.mapping(raw_option, f"{where} option {letter}", {"id", "text", "score"})
            if item["id"] != letter:
                raise self.fail(f"{where}: option {len(options) + 1} must have the id "
                                f"{letter} (options go A, B, C... in order)", item, "id")
            score = item["score"]
            if not isinstance(score, int) or isinstance(score, bool) or score < 0:
                raise self.fail(f"{where} option {letter}: score must be a whole number, "
                                "0 or more", item, "score")
            if options and score < options[-1].score:
                raise self.fail(f"{where} option {letter}: score {score} is below option "
                                f"{options[-1].id}'s {options[-1].score}; options go from the "
                                "most conservative to the most aggressive", item, "score")
            option = Option(letter, self.text(item, f"{where} option {letter}"), score)
            for lang in ("en", "zh"):
                said = option_words(option.text.get(lang), lang)
                if any(option_words(o.text.get(lang), lang) == said for o in options):
                    raise self.fail(f"{where} option {letter}: the same {lang} text as "
                                    "another option", item, "text")
            options.append(option)
        if options[-1].score == options[0].score:
            raise self.fail(f"{where}: every option has the same score", node, "options")
        return Question(qid, text, tuple(options))
