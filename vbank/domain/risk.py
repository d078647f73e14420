"""Investment risk assessment (理财风评): the questionnaire, its score, the level, suitability.

The questionnaire is data (the ``questionnaire:`` section of ``scenes/flows/risk_assessment
.yaml``), checked completely on load. Options run from the most conservative (``A``) to the
most aggressive (the last letter); the total score gives a level ``C1`` (conservative) to
``C5`` (aggressive), valid for ``valid_months``. Products carry ``R1``–``R5``; a product
above the customer's level needs their explicit acknowledgement, and a C1 customer cannot buy
above R1 at all. Nothing in this module reads a clock: callers pass ``now``.

The questionnaire section is read by ``risk_questionnaire``; spoken answers ("option B",
"the second one", "选B", the option's own words) are understood by ``risk_answers``.
"""

from __future__ import annotations

import calendar
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vbank.domain import DomainError
from vbank.domain.flows import Text

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
