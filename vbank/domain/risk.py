"""Investment risk assessment (理财风评): the questionnaire, its score, the level, suitability.

The questionnaire is data (the ``questionnaire:`` section of ``scenes/flows/risk_assessment
.yaml``), checked completely on load. Options run from the most conservative (``A``) to the
most aggressive (the last letter); the total score gives a level ``C1`` (conservative) to
``C5`` (aggressive), valid for ``valid_months``. Products carry ``R1``–``R5``; a product
above the customer's level needs their explicit acknowledgement, and a C1 customer cannot buy
above R1 at all. Spoken answers ("option B", "the second one", "选B", the option's own
words) are understood here too. Nothing in this module reads a clock: callers pass ``now``.
"""

from __future__ import annotations

import calendar
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from vbank.domain import DomainError
from vbank.domain.flows import FLOWS_DIR, Text, load_flow

RISK_FLOW_PATH = FLOWS_DIR / "risk_assessment.yaml"
ID = re.compile(r"^[a-z][a-z0-9_]*$")
LETTERS = "ABCDEFGH"  # options per question: 2 to 8, ids A, B, C... in order


class RiskError(DomainError):
    """The family of risk-assessment refusals."""


class QuestionnaireError(RiskError):
    """A questionnaire section that cannot be used; names the file, the line and the place."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}" if line else f"{source}: {message}")
        self.source, self.line = source, line


class AnswerError(RiskError):
    """Answers that cannot be scored; ``question_id`` names the question at fault."""

    def __init__(self, message: str, question_id: str) -> None:
        super().__init__(message)
        self.question_id = question_id


class UnknownQuestion(AnswerError):
    pass


class UnknownOption(AnswerError):
    def __init__(self, message: str, question_id: str, option_id: str) -> None:
        super().__init__(message, question_id)
        self.option_id = option_id


class IncompleteAnswers(AnswerError):
    def __init__(self, missing: list[str]) -> None:
        noun = "question" if len(missing) == 1 else "questions"
        super().__init__(f"no answer to {noun} {', '.join(missing)}", missing[0])
        self.missing = tuple(missing)


class TooManyAttempts(RiskError):
    def __init__(self, per_day: int, retry_at: datetime) -> None:
        noun = "assessment" if per_day == 1 else "assessments"
        super().__init__(f"at most {per_day} risk {noun} a day; try again tomorrow")
        #: when the next attempt is allowed (the start of the next day, in ``now``'s zone)
        self.retry_at = retry_at


class RiskLevel(enum.StrEnum):
    """A customer's risk tolerance, from the questionnaire."""

    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"

    @property
    def rank(self) -> int:
        return int(self.value[1])

    def describe(self, language: str) -> str:
        """``C3 (balanced)`` / ``C3（平衡型）``: what a customer is told."""
        name = LEVEL_NAMES[self]
        return f"{self.value}（{name.zh}）" if language == "zh" else f"{self.value} ({name.en})"


class ProductRisk(enum.StrEnum):
    """A product's risk rating."""

    R1 = "R1"
    R2 = "R2"
    R3 = "R3"
    R4 = "R4"
    R5 = "R5"

    @property
    def rank(self) -> int:
        return int(self.value[1])

    def describe(self, language: str) -> str:
        name = PRODUCT_RISK_NAMES[self]
        return f"{self.value}（{name.zh}）" if language == "zh" else f"{self.value} ({name.en})"


LEVEL_NAMES = {
    RiskLevel.C1: Text("conservative", "保守型"), RiskLevel.C2: Text("cautious", "稳健型"),
    RiskLevel.C3: Text("balanced", "平衡型"), RiskLevel.C4: Text("growth", "成长型"),
    RiskLevel.C5: Text("aggressive", "进取型")}
PRODUCT_RISK_NAMES = {
    ProductRisk.R1: Text("low risk", "低风险"),
    ProductRisk.R2: Text("medium-low risk", "中低风险"),
    ProductRisk.R3: Text("medium risk", "中风险"),
    ProductRisk.R4: Text("medium-high risk", "中高风险"),
    ProductRisk.R5: Text("high risk", "高风险")}


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    text: Text
    score: int


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    text: Text
    #: from the most conservative (A) to the most aggressive
    options: tuple[Option, ...]

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True, slots=True)
class Assessment:
    """A scored questionnaire: the level it gives and until when."""

    score: int
    level: RiskLevel
    valid_until: datetime
    #: the answers as scored: every question id to an upper-case option id
    answers: dict[str, str]


@dataclass(frozen=True)
class Questionnaire:
    valid_months: int
    #: the lowest total score of C1, C2, ... C5, strictly increasing
    thresholds: tuple[int, ...]
    questions: tuple[Question, ...]

    @classmethod
    def parse(cls, node: Mapping[str, Any], source: str) -> Questionnaire:
        """Read and check a ``questionnaire:`` section; errors name ``source`` and the place."""
        return _Parser(source).questionnaire(node)

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise UnknownQuestion(f"unknown question {question_id}", question_id)

    @property
    def lowest_score(self) -> int:
        return sum(q.options[0].score for q in self.questions)

    @property
    def highest_score(self) -> int:
        return sum(q.options[-1].score for q in self.questions)

    def level_for(self, total: int) -> RiskLevel:
        """The level of a total score (below C2's threshold is C1)."""
        level = RiskLevel.C1
        for candidate, threshold in zip(RiskLevel, self.thresholds, strict=True):
            if total >= threshold:
                level = candidate
        return level

    def score(self, answers: Mapping[str, str], now: datetime) -> Assessment:
        """Score one option per question; the level is valid ``valid_months`` from ``now``."""
        chosen: dict[str, Option] = {}
        for question_id, option_id in answers.items():
            question = self.question(question_id)
            option = question.option(str(option_id).strip().upper())
            if option is None:
                raise UnknownOption(f"question {question_id} has no option {option_id}",
                                    question_id, str(option_id))
            chosen[question_id] = option
        missing = [q.id for q in self.questions if q.id not in chosen]
        if missing:
            raise IncompleteAnswers(missing)
        total = sum(o.score for o in chosen.values())
        return Assessment(total, self.level_for(total), add_months(now, self.valid_months),
                          {q.id: chosen[q.id].id for q in self.questions})


def add_months(moment: datetime, months: int) -> datetime:
    """The same wall-clock time ``months`` later (the 31st becomes the month's last day)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month,
                          day=min(moment.day, calendar.monthrange(year, month)[1]))


def check_attempts(previous_attempt_times: Iterable[datetime], now: datetime,
                   per_day: int) -> None:
    """Refuse another attempt when ``per_day`` were made on ``now``'s calendar day.

    The day is the one in ``now``'s time zone; times without a zone are taken as UTC (what
    SQLite gives back).
    """
    today = now.date()
    made = sum(1 for t in previous_attempt_times if _in_zone_of(t, now).date() == today)
    if made >= per_day:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        raise TooManyAttempts(per_day, midnight + timedelta(days=1))


def _in_zone_of(moment: datetime, now: datetime) -> datetime:
    if now.tzinfo is None:
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(now.tzinfo)


@dataclass(frozen=True, slots=True)
class Suitability:
    """Whether a customer may buy a product."""

    #: the product is within the customer's level
    suitable: bool
    #: the product is above the level: the customer may buy only after an explicit,
    #: recorded acknowledgement of the risk
    needs_acknowledgement: bool
    #: buying is possible at all (with the acknowledgement if one is needed)
    allowed: bool
    reason: str


def suitability(level: RiskLevel | None, product_risk: ProductRisk) -> Suitability:
    """Match a customer's valid level (``None``: no valid assessment) to a product's risk."""
    if level is None:
        return Suitability(False, False, False,
                           "no valid risk assessment: take the risk assessment before buying "
                           f"an {product_risk.value} product")
    if product_risk.rank <= level.rank:
        return Suitability(True, False, True,
                           f"an {product_risk.value} product is within your {level.value} "
                           "risk level")
    if level is RiskLevel.C1:
        return Suitability(False, False, False,
                           f"a C1 (conservative) customer cannot buy an {product_risk.value} "
                           "product: only R1 products are allowed")
    return Suitability(False, True, True,
                       f"an {product_risk.value} product is above your {level.value} risk "
                       "level: buying it needs your explicit acknowledgement of the risk")


@cache
def load_questionnaire(path: Path = RISK_FLOW_PATH) -> Questionnaire:
    """The branch's questionnaire, from the risk assessment flow file (read once)."""
    flow = load_flow(path)
    return Questionnaire.parse(flow.questionnaire or {}, flow.file)


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
                if any(_words(o.text.get(lang), lang) == _words(option.text.get(lang), lang)
                       for o in options):
                    raise self.fail(f"{where} option {letter}: the same {lang} text as "
                                    "another option", item, "text")
            options.append(option)
        if options[-1].score == options[0].score:
            raise self.fail(f"{where}: every option has the same score", node, "options")
        return Question(qid, text, tuple(options))


# --- spoken answers ---------------------------------------------------------------------

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
NUMBERS = {"one": 0, "two": 1, "three": 2, "four": 3, "five": 4, "six": 5, "seven": 6,
           "eight": 7} | {str(n): n - 1 for n in range(1, 9)}
ZH_NUMBERS = "一二三四五六七八"
#: words that only name what comes next: "option B", "answer two"
KEYWORDS = frozenset({"option", "answer", "choice", "letter", "number"})
#: how recognisers spell a letter said on its own
LETTER_NAMES = {"ay": "A", "bee": "B", "be": "B", "see": "C", "sea": "C", "cee": "C",
                "dee": "D", "ee": "E", "ef": "F", "gee": "G", "aitch": "H"}
#: words around a choice that do not change it ("I'll take the second one, please")
FILLERS = KEYWORDS | frozenset({
    "i", "i'm", "i'd", "i'll", "we", "my", "me", "it", "it's", "is", "be", "will", "that",
    "that's", "this", "the", "an", "one", "options", "answers", "pick", "choose", "chose",
    "select", "take", "go", "going", "with", "for", "please", "um", "uh", "er", "erm", "ah",
    "oh", "okay", "ok", "so", "well", "then", "let's", "say", "would", "like", "want", "think",
    "guess", "maybe", "hmm", "mm", "yes"})
_PENULTIMATE = re.compile(r"\b(?:second|next) (?:to )?last\b|\bpenultimate\b")
_CJK = re.compile(r"[\u3400-\u9fff]")


def option_from_speech(question: Question, text: str) -> str | None:
    """The option a spoken answer names, or ``None`` when it names none or several.

    English: "B", "option B", "the second one", "second", "the last one", "number two", the
    option's own words (or words only it has). Chinese: "选B", "第二个", "最后一个", the
    option's own words. An answer that names two different options is not understood.
    """
    found = _zh_choices(question, text) if _CJK.search(text) else _en_choices(question, text)
    return found.pop() if len(found) == 1 else None


def answer_phrases(question: Question, language: str = "en") -> list[str]:
    """What a speech grammar should listen for at this question (each names one option)."""
    phrases: list[str] = []
    last = len(question.options) - 1
    for i, option in enumerate(question.options):
        if language == "zh":
            phrases += [f"选{option.id}", option.id, f"第{ZH_NUMBERS[i]}个",
                        f"第{ZH_NUMBERS[i]}项", option.text.zh]
            phrases += ["最后一个"] if i == last else []
        else:
            letter = option.id.lower()
            phrases += [letter, f"option {letter}", f"answer {letter}", ORDINALS[i],
                        f"the {ORDINALS[i]} one", " ".join(_words(option.text.en, "en"))]
            phrases += ["the last one", "last"] if i == last else []
    return list(dict.fromkeys(phrases))


def _words(text: str, language: str) -> list[str]:
    if language == "zh":
        return [re.sub(r"[\W_]+", "", text.lower())]
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def _en_choices(question: Question, text: str) -> set[str]:
    ids = [o.id for o in question.options]
    tokens = _words(_PENULTIMATE.sub("penultimate", text.lower()), "en")
    whole = _said_in_full(question, tokens, "en")
    for oid in whole:  # an option's own words are not read again as letters or positions
        words = _words(question.options[ids.index(oid)].text.en, "en")
        at = next(i for i in range(len(tokens)) if tokens[i:i + len(words)] == words)
        tokens = tokens[:at] + tokens[at + len(words):]
    named: set[str] = set()  # options named by letter, position or number
    unknown = 0  # words that are neither a name of an option nor filler
    said_a = False  # "a" is also an article: a choice only when nothing else is named
    for i, token in enumerate(tokens):
        after_keyword = i > 0 and tokens[i - 1] in KEYWORDS
        alone = len(tokens) == 1
        if token == "a":
            if after_keyword or alone:
                named.add("A")
            said_a = True
        elif len(token) == 1 and token.isalpha() and token.upper() in ids:
            named.add(token.upper())
        elif token in LETTER_NAMES and (after_keyword or alone):
            if LETTER_NAMES[token] in ids:
                named.add(LETTER_NAMES[token])
            else:
                unknown += 1
        elif token in NUMBERS and after_keyword:
            if NUMBERS[token] < len(ids):
                named.add(ids[NUMBERS[token]])
            else:
                unknown += 1
        elif token in ORDINALS:
            if ORDINALS.index(token) < len(ids):
                named.add(ids[ORDINALS.index(token)])
            else:
                unknown += 1
        elif token in ("last", "final"):
            named.add(ids[-1])
        elif token == "penultimate":
            named.add(ids[-2])
        elif token not in FILLERS:
            unknown += 1
    if said_a and not named:
        named.add("A")
    found = (named if not unknown else set()) | whole
    return found or _said_in_part(question, tokens, "en")


def _zh_choices(question: Question, text: str) -> set[str]:
    ids = [o.id for o in question.options]
    compact = _words(text, "zh")[0]
    found = _said_in_full(question, [compact], "zh")
    for oid in found:
        compact = compact.replace(_words(question.options[ids.index(oid)].text.zh, "zh")[0], "")
    for run in re.findall(r"[a-z]+", compact):
        if len(run) == 1 and run.upper() in ids:
            found.add(run.upper())
    if "倒数第二" in compact:
        found.add(ids[-2])
        compact = compact.replace("倒数第二", "")
    for number in re.findall(r"第([一二三四五六七八1-8])", compact):
        index = ZH_NUMBERS.index(number) if number in ZH_NUMBERS else int(number) - 1
        if index < len(ids):
            found.add(ids[index])
    if "最后" in compact:
        found.add(ids[-1])
    return found or _said_in_part(question, [compact], "zh")


def _said_in_full(question: Question, said: list[str], language: str) -> set[str]:
    """Options whose own words were said."""
    texts = {o.id: _words(o.text.get(language), language) for o in question.options}
    whole = [oid for oid, words in texts.items() if _contains(said, words, language)]
    # "more than five years" also contains an option "five years": the longer one is meant
    return {oid for oid in whole if not any(
        other != oid and _contains(texts[other], texts[oid], language) for other in whole)}


def _said_in_part(question: Question, said: list[str], language: str) -> set[str]:
    """The one option whose words include every word said ("everything": sell everything)."""
    texts = {o.id: _words(o.text.get(language), language) for o in question.options}
    if language == "zh":
        partial = [oid for oid, words in texts.items()
                   if len(said[0]) >= 2 and said[0] in words[0]]
    else:
        content = {t for t in said if t not in FILLERS and t != "a"}
        partial = [oid for oid, words in texts.items() if content and content <= set(words)]
    return set(partial) if len(partial) == 1 else set()


def _contains(words: list[str], part: list[str], language: str) -> bool:
    """Whether ``part`` was said within ``words`` (Chinese: one string without spaces)."""
    if language == "zh":
        return bool(part[0]) and part[0] in words[0]
    return bool(part) and any(words[i:i + len(part)] == part
                              for i in range(len(words) - len(part) + 1))
