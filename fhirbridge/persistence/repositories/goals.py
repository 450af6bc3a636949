"""Patient goals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhirbridge.domain import AchievementStatus, Goal, GoalLifecycle
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.repositories._values import (
    enum_member,
    enum_value,
    optional_code_from_json,
    optional_code_to_json,
    target_from_json,
    target_to_json,
)
from fhirbridge.persistence.tables import GoalRow


class Goals(Repository[Goal, GoalRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.GOAL, row_type=GoalRow)

    def _to_columns(self, entity: Goal) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "description": entity.description,
            "lifecycle_status": entity.lifecycle_status.value,
            "achievement_status": enum_value(entity.achievement_status),
            "description_code": optional_code_to_json(entity.description_code),
            "start_on": entity.start,
            "target": target_to_json(entity.target),
            "expressed_by": entity.expressed_by,
            "addresses": list(entity.addresses),
            "concern_ids": list(entity.concern_ids),
        }

    def _to_entity(self, row: GoalRow) -> Goal:
        return Goal(
            id=row.id,
            patient_id=row.patient_id,
            description=row.description,
            lifecycle_status=GoalLifecycle(row.lifecycle_status),
            achievement_status=enum_member(AchievementStatus, row.achievement_status),
            description_code=optional_code_from_json(row.description_code),
            start=row.start_on,
            target=target_from_json(row.target),
            expressed_by=row.expressed_by,
            addresses=list(row.addresses),
            concern_ids=list(row.concern_ids or []),
        )

    def list_for_patient(self, patient_id: str) -> list[Goal]:
        return self._list(
            select(GoalRow).where(GoalRow.patient_id == patient_id).order_by(GoalRow.id)
        )
