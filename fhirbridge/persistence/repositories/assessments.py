"""Assessment responses, the observations derived from them and the concerns they found."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhirbridge.domain import (
    AssessmentAnswer,
    AssessmentResponse,
    AssessmentStatus,
    ConcernStatus,
    HealthConcern,
    ScreeningObservation,
    ScreeningStatus,
)
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.repositories._values import (
    code_from_json,
    code_to_json,
    codes_from_json,
    codes_to_json,
    optional_code_from_json,
    optional_code_to_json,
)
from fhirbridge.persistence.tables import (
    AssessmentRow,
    HealthConcernRow,
    ScreeningObservationRow,
)

__all__ = ["Assessments", "HealthConcerns", "ScreeningObservations"]


def _answer_to_json(answer: AssessmentAnswer) -> dict[str, Any]:
    return {
        "link_id": answer.link_id,
        "answer": code_to_json(answer.answer),
        "question": optional_code_to_json(answer.question),
        "score": answer.score,
    }


def _answer_from_json(data: dict[str, Any]) -> AssessmentAnswer:
    return AssessmentAnswer(
        link_id=data["link_id"],
        answer=code_from_json(data["answer"]),
        question=optional_code_from_json(data.get("question")),
        score=data.get("score"),
    )


class Assessments(Repository[AssessmentResponse, AssessmentRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.ASSESSMENT, row_type=AssessmentRow)

    def _to_columns(self, entity: AssessmentResponse) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "questionnaire": entity.questionnaire,
            "status": entity.status.value,
            "authored_at": entity.authored,
            "author_id": entity.author_id,
            "answers": [_answer_to_json(a) for a in entity.answers],
            "total": entity.total,
            "band": entity.band,
            "positive_domains": list(entity.positive_domains),
        }

    def _to_entity(self, row: AssessmentRow) -> AssessmentResponse:
        return AssessmentResponse(
            id=row.id,
            patient_id=row.patient_id,
            questionnaire=row.questionnaire,
            status=AssessmentStatus(row.status),
            authored=row.authored_at,
            author_id=row.author_id,
            answers=[_answer_from_json(a) for a in row.answers],
            total=row.total,
            band=row.band,
            positive_domains=list(row.positive_domains),
        )

    def history(
        self, patient_id: str, questionnaire: str | None = None
    ) -> list[AssessmentResponse]:
        """The patient's responses (to one questionnaire), oldest first."""
        statement = select(AssessmentRow).where(AssessmentRow.patient_id == patient_id)
        if questionnaire is not None:
            statement = statement.where(AssessmentRow.questionnaire == questionnaire)
        return self._list(statement.order_by(AssessmentRow.authored_at, AssessmentRow.id))


class ScreeningObservations(Repository[ScreeningObservation, ScreeningObservationRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(
            session, kind=EntityKind.SCREENING_OBSERVATION, row_type=ScreeningObservationRow
        )

    def _to_columns(self, entity: ScreeningObservation) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "assessment_id": entity.assessment_id,
            "status": entity.status.value,
            "code": code_to_json(entity.code),
            "categories": codes_to_json(entity.categories),
            "value_code": optional_code_to_json(entity.value_code),
            "value_integer": entity.value_integer,
            "effective_at": entity.effective,
            "performer_id": entity.performer_id,
        }

    def _to_entity(self, row: ScreeningObservationRow) -> ScreeningObservation:
        return ScreeningObservation(
            id=row.id,
            patient_id=row.patient_id,
            assessment_id=row.assessment_id,
            status=ScreeningStatus(row.status),
            code=code_from_json(row.code),
            categories=codes_from_json(row.categories),
            value_code=optional_code_from_json(row.value_code),
            value_integer=row.value_integer,
            effective=row.effective_at,
            performer_id=row.performer_id,
        )

    def for_assessment(self, assessment_id: str) -> list[ScreeningObservation]:
        return self._list(
            select(ScreeningObservationRow)
            .where(ScreeningObservationRow.assessment_id == assessment_id)
            .order_by(ScreeningObservationRow.id)
        )


class HealthConcerns(Repository[HealthConcern, HealthConcernRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.HEALTH_CONCERN, row_type=HealthConcernRow)

    def _to_columns(self, entity: HealthConcern) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "code": code_to_json(entity.code),
            "clinical_status": entity.clinical_status.value,
            "categories": codes_to_json(entity.categories),
            "recorded_on": entity.recorded,
            "recorder_id": entity.recorder_id,
            "evidence_ids": list(entity.evidence_ids),
        }

    def _to_entity(self, row: HealthConcernRow) -> HealthConcern:
        return HealthConcern(
            id=row.id,
            patient_id=row.patient_id,
            code=code_from_json(row.code),
            clinical_status=ConcernStatus(row.clinical_status),
            categories=codes_from_json(row.categories),
            recorded=row.recorded_on,
            recorder_id=row.recorder_id,
            evidence_ids=list(row.evidence_ids),
        )

    def list_for_patient(self, patient_id: str) -> list[HealthConcern]:
        return self._list(
            select(HealthConcernRow)
            .where(HealthConcernRow.patient_id == patient_id)
            .order_by(HealthConcernRow.id)
        )
