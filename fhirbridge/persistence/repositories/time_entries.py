"""Time entries: the minutes monthly billing is computed from."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhirbridge.domain import (
    ContactMode,
    Program,
    StaffRole,
    TimeEntry,
    TimeEntryActivity,
    TimeEntryStatus,
)
from fhirbridge.persistence.errors import ConstraintViolation, RecordExists
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository, constraint_name
from fhirbridge.persistence.repositories._locks import lock_name
from fhirbridge.persistence.repositories._values import enum_member, enum_value
from fhirbridge.persistence.tables import TimeEntryRow, UtcDateTime

_TABLE = cast(Table, TimeEntryRow.__table__)
_ENTERED_IN_ERROR = TimeEntryStatus.ENTERED_IN_ERROR.value
# How each backend names a clash on the primary key (see repositories._base.constraint_name).
_PRIMARY_KEY = frozenset({"pk_time_entries", "UNIQUE constraint failed: time_entries.id"})


def _overlapping(running_counts: bool) -> Select[str]:
    # Built once (below), not per call: every recorded entry runs it, and building the
    # statement cost more than running it.
    start = bindparam("start", type_=UtcDateTime())
    ends_after_start = TimeEntryRow.ended_at > start
    return (
        select(TimeEntryRow.id)
        .where(
            TimeEntryRow.staff_id == bindparam("staff_id"),
            TimeEntryRow.started_at >= bindparam("since", type_=UtcDateTime()),
            TimeEntryRow.started_at < bindparam("end", type_=UtcDateTime()),
            TimeEntryRow.status != _ENTERED_IN_ERROR,
            TimeEntryRow.id != bindparam("excluding"),
            or_(ends_after_start, TimeEntryRow.ended_at.is_(None))
            if running_counts
            else ends_after_start,
        )
        .order_by(TimeEntryRow.started_at, TimeEntryRow.id)
        .limit(1)
    )


# By whether an entry still running overlaps, i.e. whether ``now`` is after ``start``.
_OVERLAPPING = {running_counts: _overlapping(running_counts) for running_counts in (True, False)}


class TimeEntries(Repository[TimeEntry, TimeEntryRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.TIME_ENTRY, row_type=TimeEntryRow)

    def lock_staff(self, staff_id: str) -> None:
        """Hold the staff member's time (their entries and running timer) until the transaction
        ends; concurrent writers of it wait. Take it before reading what an overlap or a running
        timer is decided on: two writers that both read first would both find the time free."""
        lock_name(self._session, "time-of-staff", staff_id)

    def add(self, entity: TimeEntry) -> None:
        """Insert a new entry in one statement, without first looking for a stored one: an id
        already stored raises RecordExists (from the primary key), as for every repository."""
        try:
            # Core, not the ORM's flush: the insert is on every recorded entry's path.
            self._session.execute(insert(_TABLE), self._to_columns(entity))
        except IntegrityError as error:
            name = constraint_name(error)
            if name in _PRIMARY_KEY:
                raise RecordExists(self.kind, entity.id) from error
            raise ConstraintViolation(self.kind, entity.id, name) from error

    def first_overlapping(
        self,
        staff_id: str,
        start: datetime,
        end: datetime,
        *,
        now: datetime,
        since: datetime,
        excluding: str | None = None,
    ) -> str | None:
        """The id of the staff member's earliest entry that started in [since, end) and overlaps
        [start, end): one still running counts as running until ``now``, entered-in-error ones
        do not count. None when the time is free."""
        found: str | None = self._session.scalar(
            _OVERLAPPING[now > start],
            {
                "staff_id": staff_id,
                "since": since,
                "start": start,
                "end": end,
                # An id no entry has: "" never matches a stored (non-empty) id.
                "excluding": excluding or "",
            },
        )
        return found

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
        return time_entry_of(row)

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


def time_entry_of(row: Any) -> TimeEntry:
    """A time entry from its row: an ORM row, or a Core row of the table's columns (read models
    that load many entries skip the ORM's identity map)."""
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
