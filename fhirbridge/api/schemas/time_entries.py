"""Time entries, timers, their audit trail and the monthly minutes report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhirbridge.api.schemas._base import Id, Incoming, Instant, OptionalId, Outgoing, Text
from fhirbridge.domain import (
    ContactMode,
    Program,
    StaffRole,
    TimeEntryActivity,
    TimeEntryStatus,
)

Notes = Text | None


class TimeEntryCreate(Incoming):
    patient_id: Id
    program: Program
    enrollment_id: OptionalId = None  # found from the program when left out
    staff_id: OptionalId = None  # default: the caller
    activity: TimeEntryActivity
    mode: ContactMode
    start: Instant
    end: Instant
    minutes: int | None = None  # default: the minutes from start to end
    interactive: bool | None = None
    notes: Notes = None


class TimeEntryUpdate(Incoming):
    activity: TimeEntryActivity | None = None
    mode: ContactMode | None = None
    start: Instant | None = None
    end: Instant | None = None
    minutes: int | None = None
    interactive: bool | None = None
    notes: Notes = None


class TimeEntryRead(Outgoing):
    id: str
    status: TimeEntryStatus
    patient_id: str | None
    enrollment_id: str | None
    program: Program | None
    staff_id: str | None
    staff_role: StaffRole | None
    activity: TimeEntryActivity | None
    mode: ContactMode | None
    start: datetime | None
    end: datetime | None
    minutes: int | None
    interactive: bool | None
    notes: str | None


class TimerCreate(Incoming):
    patient_id: Id
    program: Program
    enrollment_id: OptionalId = None
    staff_id: OptionalId = None  # default: the caller
    activity: TimeEntryActivity
    mode: ContactMode
    interactive: bool | None = None
    notes: Notes = None


class TimerStop(Incoming):
    interactive: bool | None = None
    notes: Notes = None


class AuditEventRead(Outgoing):
    id: int
    occurred_at: datetime
    actor: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class MinutesRead(Outgoing):
    """Finished minutes of one patient in one program in a month."""

    patient_id: str
    program: Program
    minutes: int
    entries: int
