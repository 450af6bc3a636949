"""Monthly charges: the codes each patient earned in a calendar month."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhirbridge.domain import ChargeStatus, Code, MonthlyCharge
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.tables import ChargeRow


class Charges(Repository[MonthlyCharge, ChargeRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.CHARGE, row_type=ChargeRow)

    def _to_columns(self, entity: MonthlyCharge) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "code_system": entity.code.system,
            "code": entity.code.code,
            "units": entity.units,
            "month_start": entity.month_start,
            "month_end": entity.month_end,
            "status": entity.status.value,
            "practitioner_id": entity.practitioner_id,
            "time_entry_ids": list(entity.time_entry_ids),
        }

    def _to_entity(self, row: ChargeRow) -> MonthlyCharge:
        # Billing codes carry no display: CPT descriptors are the AMA's text, not ours to copy.
        return MonthlyCharge(
            id=row.id,
            patient_id=row.patient_id,
            code=Code(row.code_system, row.code),
            units=row.units,
            month_start=row.month_start,
            month_end=row.month_end,
            status=ChargeStatus(row.status),
            practitioner_id=row.practitioner_id,
            time_entry_ids=list(row.time_entry_ids),
        )

    def list_for_month(
        self, month_start: date, *, patient_ids: Sequence[str] | None = None
    ) -> list[MonthlyCharge]:
        """The charges of the month starting on ``month_start``, by patient, then code."""
        statement = select(ChargeRow).where(ChargeRow.month_start == month_start)
        if patient_ids is not None:
            statement = statement.where(ChargeRow.patient_id.in_(list(patient_ids)))
        return self._list(statement.order_by(ChargeRow.patient_id, ChargeRow.code, ChargeRow.id))

    def list_for_patient(self, patient_id: str) -> list[MonthlyCharge]:
        return self._list(
            select(ChargeRow)
            .where(ChargeRow.patient_id == patient_id)
            .order_by(ChargeRow.month_start, ChargeRow.code, ChargeRow.id)
        )
