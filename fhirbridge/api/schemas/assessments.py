"""Assessments and screening: a response as sent, as stored, and a patient's score history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from fhirbridge.api.schemas._base import Code, Incoming, Instant, OptionalId, Outgoing
from fhirbridge.domain import AssessmentResponse, AssessmentStatus
from fhirbridge.domain.assessment import HistoryPoint

MAX_ANSWERS = 100  # far above any instrument's items, far below a flood


class AssessmentCreate(Incoming):
    instrument: Code = Field(description="instrument id: phq-2, phq-9, gad-7, ahc-hrsn")
    answers: dict[Code, Code] = Field(
        max_length=MAX_ANSWERS, description="linkId -> LOINC answer code (LA...)"
    )
    authored: Instant | None = Field(default=None, description="when answered; default now")
    author_id: OptionalId = Field(default=None, description="default: the caller")


class AnswerRead(Outgoing):
    link_id: str
    question: str | None
    answer: str
    answer_display: str | None
    score: int | None


class AssessmentRead(Outgoing):
    id: str
    patient_id: str
    instrument: str = Field(description="instrument id (by the questionnaire answered)")
    questionnaire: str
    status: AssessmentStatus
    authored: datetime
    author_id: str | None
    answers: list[AnswerRead]
    total: int | None
    band: str | None
    positive_domains: list[str]

    @classmethod
    def of(cls, response: AssessmentResponse, instrument: str) -> AssessmentRead:
        return cls(
            id=response.id,
            patient_id=response.patient_id,
            instrument=instrument,
            questionnaire=response.questionnaire,
            status=response.status,
            authored=response.authored,
            author_id=response.author_id,
            answers=[
                AnswerRead(
                    link_id=a.link_id,
                    question=None if a.question is None else a.question.code,
                    answer=a.answer.code,
                    answer_display=a.answer.display,
                    score=a.score,
                )
                for a in response.answers
            ],
            total=response.total,
            band=response.band,
            positive_domains=list(response.positive_domains),
        )


class FollowUpsRead(Outgoing):
    """What the instrument's rules created with the response."""

    rules: list[str] = Field(description="ids of the follow-up rules that fired")
    observation_ids: list[str]
    concern_ids: list[str] = Field(description="health concerns (Condition) found")
    goal_ids: list[str] = Field(description="proposed goals, one per concern")
    referral_ids: list[str] = Field(description="proposed referrals (draft) to confirm")
    task_ids: list[str]
    proposed_instruments: list[str]


class AssessmentRecorded(AssessmentRead):
    follow_ups: FollowUpsRead


class HistoryPointRead(Outgoing):
    assessment_id: str
    instrument: str
    authored: datetime
    total: int | None
    band: str | None
    baseline: bool = Field(description="the first scored response: what the rest compare to")
    change_percent: Decimal | None = Field(description="drop from baseline in %, + = better")
    response: bool | None = Field(description="dropped by the instrument's threshold (50 %)")
    remission: bool | None = Field(description="total under the remission threshold (5)")

    @classmethod
    def of(
        cls, response: AssessmentResponse, point: HistoryPoint, instrument: str
    ) -> HistoryPointRead:
        return cls(
            assessment_id=response.id,
            instrument=instrument,
            authored=point.authored,
            total=point.total,
            band=point.band,
            baseline=point.baseline,
            change_percent=point.change_percent,
            response=point.response,
            remission=point.remission,
        )


class AssessmentHistoryRead(Outgoing):
    patient_id: str
    instrument: str | None
    points: list[HistoryPointRead]
