"""Care-management tasks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhirbridge.domain import CareTask, CareTaskKind, TaskPriority, TaskStatus
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.repositories._values import enum_member, enum_value
from fhirbridge.persistence.tables import CareTaskRow


class CareTasks(Repository[CareTask, CareTaskRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.CARE_TASK, row_type=CareTaskRow)

    def _to_columns(self, entity: CareTask) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "kind": enum_value(entity.kind),
            "status": entity.status.value,
            "authored_at": entity.authored_on,
            "description": entity.description,
            "priority": enum_value(entity.priority),
            "owner_id": entity.owner_id,
            "requester_id": entity.requester_id,
            "due_start": entity.due_start,
            "due_end": entity.due_end,
            "status_reason": entity.status_reason,
            "care_plan_id": entity.care_plan_id,
        }

    def _to_entity(self, row: CareTaskRow) -> CareTask:
        return CareTask(
            id=row.id,
            patient_id=row.patient_id,
            kind=enum_member(CareTaskKind, row.kind),
            status=TaskStatus(row.status),
            authored_on=row.authored_at,
            description=row.description,
            priority=enum_member(TaskPriority, row.priority),
            owner_id=row.owner_id,
            requester_id=row.requester_id,
            due_start=row.due_start,
            due_end=row.due_end,
            status_reason=row.status_reason,
            care_plan_id=row.care_plan_id,
        )

    def list_for_patient(self, patient_id: str) -> list[CareTask]:
        return self._list(
            select(CareTaskRow)
            .where(CareTaskRow.patient_id == patient_id)
            .order_by(CareTaskRow.authored_at, CareTaskRow.id)
        )

    def list_for_owner(self, owner_id: str) -> list[CareTask]:
        return self._list(
            select(CareTaskRow)
            .where(CareTaskRow.owner_id == owner_id)
            .order_by(CareTaskRow.authored_at, CareTaskRow.id)
        )

    def list_for_care_plan(self, care_plan_id: str) -> list[CareTask]:
        return self._list(
            select(CareTaskRow)
            .where(CareTaskRow.care_plan_id == care_plan_id)
            .order_by(CareTaskRow.authored_at, CareTaskRow.id)
        )
