"""Time entries: the minutes monthly billing is computed from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhirbridge.domain import (
    ContactMode,
    Program,
    StaffRole,
    TimeEntry,
    TimeEntryActivity,
    TimeEntryStatus,
)
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.repositories._values import enum_member, enum_value
from fhirbridge.persistence.tables import TimeEntryRow


class TimeEntries(Repository[TimeEntry, TimeEntryRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.TIME_ENTRY, row_type=TimeEntryRow)

    def _to_columns(self, entity: TimeEntry) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "enrollment_id": entity.enrollment_id,
            "program": enum_value(entity.program),
            "staff_id": entity.staff_id,
            "staff_role": enum_value(entity.staff_role),
            "activity": enum_value(entity.activity),
            "mode": enum_value(entity.mode),
            "status": entity.status.value,
            "started_at": entity.start,
            "ended_at": entity.end,
            "minutes": entity.minutes,
            "interactive": entity.interactive,
            "notes": entity.notes,
        }

    def _to_entity(self, row: TimeEntryRow) -> TimeEntry:
        return TimeEntry(
            id=row.id,
            patient_id=row.patient_id,
            enrollment_id=row.enrollment_id,
            program=enum_member(Program, row.program),
            staff_id=row.staff_id,
            staff_role=enum_member(StaffRole, row.staff_role),
            activity=enum_member(TimeEntryActivity, row.activity),
            mode=enum_member(ContactMode, row.mode),
            status=TimeEntryStatus(row.status),
            start=row.started_at,
            end=row.ended_at,
            minutes=row.minutes,
            interactive=row.interactive,
            notes=row.notes,
        )

    def list_for_patient(
        self, patient_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[TimeEntry]:
        """Entries started in [since, until), oldest first."""
        statement = select(TimeEntryRow).where(TimeEntryRow.patient_id == patient_id)
        if since is not None:
            statement = statement.where(TimeEntryRow.started_at >= since)
        if until is not None:
            statement = statement.where(TimeEntryRow.started_at < until)
        return self._list(statement.order_by(TimeEntryRow.started_at, TimeEntryRow.id))

    def list_for_staff(
        self, staff_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[TimeEntry]:
        """Entries started in [since, until), oldest first."""
        statement = select(TimeEntryRow).where(TimeEntryRow.staff_id == staff_id)
        if since is not None:
            statement = statement.where(TimeEntryRow.started_at >= since)
        if until is not None:
            statement = statement.where(TimeEntryRow.started_at < until)
        return self._list(statement.order_by(TimeEntryRow.started_at, TimeEntryRow.id))

    def list_for_enrollment(self, enrollment_id: str) -> list[TimeEntry]:
        return self._list(
            select(TimeEntryRow)
            .where(TimeEntryRow.enrollment_id == enrollment_id)
            .order_by(TimeEntryRow.started_at, TimeEntryRow.id)
        )
