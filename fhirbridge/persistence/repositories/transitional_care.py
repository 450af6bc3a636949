"""TCM periods and their contacts (attempts and visits alike)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhirbridge.domain.timeentry import ContactMode
from fhirbridge.domain.transitional_care import (
    DischargeSetting,
    TcmComplexity,
    TcmContact,
    TcmContactKind,
    TcmPeriod,
    TcmPeriodStatus,
)
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.repositories._values import enum_member, enum_value
from fhirbridge.persistence.tables import TcmContactRow, TcmPeriodRow

__all__ = ["TcmContacts", "TcmPeriods"]


class TcmPeriods(Repository[TcmPeriod, TcmPeriodRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.TCM_PERIOD, row_type=TcmPeriodRow)

    def _to_columns(self, entity: TcmPeriod) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "discharge_key": entity.discharge_key,
            "discharged_on": entity.discharged_on,
            "status": entity.status.value,
            "setting": enum_value(entity.setting),
            "disposition": entity.disposition,
            "complexity": enum_value(entity.complexity),
            "complexity_recorded_by": entity.complexity_recorded_by,
            "practitioner_id": entity.practitioner_id,
            "contact_task_id": entity.contact_task_id,
            "visit_task_id": entity.visit_task_id,
            "opened_at": entity.opened_at,
        }

    def _to_entity(self, row: TcmPeriodRow) -> TcmPeriod:
        return TcmPeriod(
            id=row.id,
            patient_id=row.patient_id,
            discharge_key=row.discharge_key,
            discharged_on=row.discharged_on,
            status=TcmPeriodStatus(row.status),
            setting=enum_member(DischargeSetting, row.setting),
            disposition=row.disposition,
            complexity=enum_member(TcmComplexity, row.complexity),
            complexity_recorded_by=row.complexity_recorded_by,
            practitioner_id=row.practitioner_id,
            contact_task_id=row.contact_task_id,
            visit_task_id=row.visit_task_id,
            opened_at=row.opened_at,
        )

    def find_by_discharge(self, discharge_key: str) -> TcmPeriod | None:
        row = self._session.scalars(
            select(TcmPeriodRow).where(TcmPeriodRow.discharge_key == discharge_key)
        ).first()
        return None if row is None else self._to_entity(row)

    def list_for_patient(self, patient_id: str) -> list[TcmPeriod]:
        return self._list(
            select(TcmPeriodRow)
            .where(TcmPeriodRow.patient_id == patient_id)
            .order_by(TcmPeriodRow.discharged_on, TcmPeriodRow.id)
        )

    def list_for_patients(self, patient_ids: Iterable[str] | None) -> list[TcmPeriod]:
        """Every period (of ``patient_ids`` when given), by patient and discharge day."""
        statement = select(TcmPeriodRow).order_by(
            TcmPeriodRow.patient_id, TcmPeriodRow.discharged_on, TcmPeriodRow.id
        )
        if patient_ids is not None:
            statement = statement.where(TcmPeriodRow.patient_id.in_(list(patient_ids)))
        return self._list(statement)


class TcmContacts(Repository[TcmContact, TcmContactRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.TCM_CONTACT, row_type=TcmContactRow)

    def _to_columns(self, entity: TcmContact) -> dict[str, Any]:
        return {
            "id": entity.id,
            "period_id": entity.period_id,
            "patient_id": entity.patient_id,
            "kind": entity.kind.value,
            "occurred_on": entity.occurred_on,
            "occurred_at": entity.occurred_at,
            "staff_id": entity.staff_id,
            "mode": enum_value(entity.mode),
            "minutes": entity.minutes,
            "note": entity.note,
        }

    def _to_entity(self, row: TcmContactRow) -> TcmContact:
        return TcmContact(
            id=row.id,
            period_id=row.period_id,
            patient_id=row.patient_id,
            kind=TcmContactKind(row.kind),
            occurred_on=row.occurred_on,
            occurred_at=row.occurred_at,
            staff_id=row.staff_id,
            mode=enum_member(ContactMode, row.mode),
            minutes=row.minutes,
            note=row.note,
        )

    def list_for_period(self, period_id: str) -> list[TcmContact]:
        return self._list(
            select(TcmContactRow)
            .where(TcmContactRow.period_id == period_id)
            .order_by(TcmContactRow.occurred_on, TcmContactRow.id)
        )

    def list_for_patients(self, patient_ids: Iterable[str] | None) -> list[TcmContact]:
        statement = select(TcmContactRow).order_by(
            TcmContactRow.patient_id, TcmContactRow.occurred_on, TcmContactRow.id
        )
        if patient_ids is not None:
            statement = statement.where(TcmContactRow.patient_id.in_(list(patient_ids)))
        return self._list(statement)
