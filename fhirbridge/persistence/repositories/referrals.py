"""Closed-loop referrals: the order and its fulfilment tracker in one record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhirbridge.domain import Referral, ReferralKind, ReferralStatus, TaskPriority, TaskStatus
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.repositories._values import (
    codes_from_json,
    codes_to_json,
    enum_member,
    enum_value,
    optional_code_from_json,
    optional_code_to_json,
)
from fhirbridge.persistence.tables import ReferralRow


class Referrals(Repository[Referral, ReferralRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.REFERRAL, row_type=ReferralRow)

    def _to_columns(self, entity: Referral) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "kind": enum_value(entity.kind),
            "status": entity.status.value,
            "service": optional_code_to_json(entity.service),
            "categories": codes_to_json(entity.categories),
            "authored_at": entity.authored_on,
            "requester_id": entity.requester_id,
            "reason": entity.reason,
            "reason_code": optional_code_to_json(entity.reason_code),
            "priority": enum_value(entity.priority),
            "performer_reference": entity.performer_reference,
            "performer_display": entity.performer_display,
            "goal_id": entity.goal_id,
            "consent_id": entity.consent_id,
            "care_plan_id": entity.care_plan_id,
            "task_status": entity.task_status.value,
            "task_status_reason": entity.task_status_reason,
            "task_owner_reference": entity.task_owner_reference,
            "outcomes": codes_to_json(entity.outcomes),
            "outcome_references": list(entity.outcome_references),
        }

    def _to_entity(self, row: ReferralRow) -> Referral:
        return Referral(
            id=row.id,
            patient_id=row.patient_id,
            kind=enum_member(ReferralKind, row.kind),
            status=ReferralStatus(row.status),
            service=optional_code_from_json(row.service),
            categories=codes_from_json(row.categories),
            authored_on=row.authored_at,
            requester_id=row.requester_id,
            reason=row.reason,
            reason_code=optional_code_from_json(row.reason_code),
            priority=enum_member(TaskPriority, row.priority),
            performer_reference=row.performer_reference,
            performer_display=row.performer_display,
            goal_id=row.goal_id,
            consent_id=row.consent_id,
            care_plan_id=row.care_plan_id,
            task_status=TaskStatus(row.task_status),
            task_status_reason=row.task_status_reason,
            task_owner_reference=row.task_owner_reference,
            outcomes=codes_from_json(row.outcomes),
            outcome_references=list(row.outcome_references),
        )

    def list_for_patient(self, patient_id: str) -> list[Referral]:
        return self._list(
            select(ReferralRow)
            .where(ReferralRow.patient_id == patient_id)
            .order_by(ReferralRow.authored_at, ReferralRow.id)
        )

    def list_for_care_plan(self, care_plan_id: str) -> list[Referral]:
        return self._list(
            select(ReferralRow)
            .where(ReferralRow.care_plan_id == care_plan_id)
            .order_by(ReferralRow.authored_at, ReferralRow.id)
        )

    def list_with_task_status(self, *statuses: TaskStatus) -> list[Referral]:
        """Referrals whose tracker is in one of ``statuses`` (e.g. the open ones to poll)."""
        return self._list(
            select(ReferralRow)
            .where(ReferralRow.task_status.in_([status.value for status in statuses]))
            .order_by(ReferralRow.authored_at, ReferralRow.id)
        )
