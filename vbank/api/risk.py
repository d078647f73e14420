"""``/api/v1/risk`` and ``/api/v1/products``: the risk questionnaire, assessments, products and
whether a product suits the customer (customers only).

The day's attempts end at the branch's local midnight; ``branch_now`` is a dependency so that
tests can move the clock.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field, StringConstraints

from vbank.api.deps import CurrentCustomer, DbDep, SettingsDep
from vbank.domain.flows import Text
from vbank.domain.products import Product, load_products
from vbank.domain.risk import (
    AnswerError,
    IncompleteAnswers,
    ProductRisk,
    RiskLevel,
    TooManyAttempts,
    UnknownOption,
    UnknownQuestion,
    suitability,
)
from vbank.domain.risk_questionnaire import load_questionnaire
from vbank.store.risk import current_level, record_assessment

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["risk"])


def branch_now() -> datetime:
    """The branch's local time, with its zone."""
    return datetime.now().astimezone()


Now = Annotated[datetime, Depends(branch_now)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=32)]


def _text(text: Text) -> dict[str, str]:
    return {"en": text.en, "zh": text.zh}


class OptionPublic(BaseModel):
    id: str
    text: dict[str, str]


class QuestionPublic(BaseModel):
    id: str
    text: dict[str, str]
    options: list[OptionPublic]


class QuestionnairePublic(BaseModel):
    valid_months: int
    questions: list[QuestionPublic]


class AssessmentCreate(BaseModel):
    answers: dict[Id, Id] = Field(max_length=64, description="question id → option id (A, B...)")


class AssessmentPublic(BaseModel):
    level: RiskLevel
    score: int
    valid_until: datetime


class ProductPublic(BaseModel):
    id: str
    name: dict[str, str]
    risk: ProductRisk
    description: dict[str, str]
    expected_return: dict[str, str]


class SuitabilityCheck(BaseModel):
    acknowledgement: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
    ] | None = Field(None, description="the customer's own words accepting the extra risk")


class SuitabilityPublic(BaseModel):
    product_id: str
    product_risk: ProductRisk
    #: the customer's valid level, or none
    level: RiskLevel | None
    suitable: bool
    needs_acknowledgement: bool
    allowed: bool
    #: an acknowledgement was given and it is what this product needed
    acknowledged: bool
    reason: str


@router.get("/risk/questionnaire", response_model=QuestionnairePublic)
async def get_questionnaire(_: CurrentCustomer) -> QuestionnairePublic:
    """The questions with their options, in English and Chinese (scores are not shown)."""
    q = load_questionnaire()
    return QuestionnairePublic(valid_months=q.valid_months, questions=[
        QuestionPublic(id=question.id, text=_text(question.text),
                       options=[OptionPublic(id=o.id, text=_text(o.text))
                                for o in question.options])
        for question in q.questions])


@router.post("/risk/assessments", response_model=AssessmentPublic,
             status_code=status.HTTP_201_CREATED,
             responses={422: {"description": "incomplete or unknown answers"},
                        429: {"description": "too many attempts today"}})
async def create_assessment(body: AssessmentCreate, customer: CurrentCustomer, db: DbDep,
                            settings: SettingsDep, now: Now, request: Request) -> AssessmentPublic:
    try:
        row = await record_assessment(db, customer.username, body.answers, now,
                                      per_day=settings.risk_attempts_per_day)
    except TooManyAttempts as exc:
        wait_s = max(1, math.ceil((exc.retry_at - now).total_seconds()))
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc),
                            headers={"Retry-After": str(wait_s)}) from exc
    except AnswerError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, _answer_error(exc)) from exc
    await db.commit()
    log.info("risk assessment of %s: %s, score %d", customer.username, row.level, row.score)
    await request.app.state.rewards.award(customer.username, "risk_assessed", str(row.id))
    return AssessmentPublic(level=RiskLevel(row.level), score=row.score,
                            valid_until=row.valid_until)


def _answer_error(exc: AnswerError) -> list[dict[str, Any]]:
    """The 422 detail in FastAPI's own shape, naming the question at fault."""
    kind = {IncompleteAnswers: "missing", UnknownQuestion: "unknown_question",
            UnknownOption: "unknown_option"}.get(type(exc), "invalid_answer")
    return [{"loc": ["body", "answers", exc.question_id], "msg": str(exc), "type": kind}]


@router.get("/risk/assessments/current", response_model=AssessmentPublic,
            responses={404: {"description": "no valid assessment"}})
async def get_current_assessment(customer: CurrentCustomer, db: DbDep,
                                 now: Now) -> AssessmentPublic:
    """The customer's latest assessment that is still valid."""
    row = await current_level(db, customer.username, now)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no valid risk assessment")
    return AssessmentPublic(level=RiskLevel(row.level), score=row.score,
                            valid_until=row.valid_until)


def _product(p: Product) -> ProductPublic:
    return ProductPublic(id=p.id, name=_text(p.name), risk=p.risk,
                         description=_text(p.description),
                         expected_return=_text(p.expected_return))


@router.get("/products", response_model=list[ProductPublic])
async def list_products(_: CurrentCustomer) -> list[ProductPublic]:
    return [_product(p) for p in load_products().values()]


@router.post("/products/{product_id}/suitability", response_model=SuitabilityPublic,
             responses={404: {"description": "no such product"}})
async def check_suitability(product_id: str, customer: CurrentCustomer, db: DbDep, now: Now,
                            body: SuitabilityCheck | None = None) -> SuitabilityPublic:
    """Whether the product suits the customer's latest valid level; an acknowledgement in the
    body is accepted for a product above the level (never for a C1 customer above R1)."""
    product = load_products().get(product_id)
    if product is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such product")
    row = await current_level(db, customer.username, now)
    level = RiskLevel(row.level) if row is not None else None
    verdict = suitability(level, product.risk)
    acknowledged = bool(body is not None and body.acknowledgement
                        and verdict.needs_acknowledgement and verdict.allowed)
    if acknowledged:
        log.info("%s acknowledged the risk of %s (%s) above level %s", customer.username,
                 product.id, product.risk.value, level)
    return SuitabilityPublic(product_id=product.id, product_risk=product.risk, level=level,
                             suitable=verdict.suitable,
                             needs_acknowledgement=verdict.needs_acknowledgement,
                             allowed=verdict.allowed, acknowledged=acknowledged,
                             reason=verdict.reason)
