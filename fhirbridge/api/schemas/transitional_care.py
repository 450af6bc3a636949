"""Transitional care (TCM): periods with their deadlines and verdicts, contacts, complexity."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from fhirbridge.api.schemas._base import Incoming, Instant, OptionalId, Outgoing, Text
from fhirbridge.domain import ContactMode, TaskStatus
from fhirbridge.domain.transitional_care import (
    DischargeSetting,
    TcmComplexity,
    TcmContactKind,
    TcmPeriodStatus,
)

__all__ = [
    "TcmCodeRead",
    "TcmComplexityUpdate",
    "TcmContactCreate",
    "TcmContactRead",
    "TcmDeadlineTaskRead",
    "TcmPeriodRead",
]

MAX_MINUTES = 24 * 60


class TcmContactCreate(Incoming):
    """A contact with the patient or caregiver, a documented unsuccessful attempt, or the
    face-to-face visit. ``staff_id``: who made it (care managers record only themselves)."""

    kind: TcmContactKind
    occurred_at: Instant
    staff_id: OptionalId = None
    mode: ContactMode | None = None
    minutes: int | None = Field(default=None, ge=0, le=MAX_MINUTES)
    note: Text | None = None


class TcmComplexityUpdate(Incoming):
    """The transition's medical decision-making, as the care team judges it."""

    complexity: TcmComplexity
    recorded_by: OptionalId = None


class TcmContactRead(Outgoing):
    id: str
    period_id: str
    kind: TcmContactKind
    occurred_on: date
    occurred_at: datetime | None
    staff_id: str | None
    mode: ContactMode | None
    minutes: int | None


class TcmDeadlineTaskRead(Outgoing):
    id: str
    status: TaskStatus
    due_end: date | None
    description: str | None


class TcmCodeRead(Outgoing):
    code: str
    earned: bool
    explanation: str


class TcmPeriodRead(Outgoing):
    id: str
    patient_id: str
    discharge: str  # the discharge Encounter on its server
    discharged_on: date
    last_day: date
    status: TcmPeriodStatus
    setting: DischargeSetting | None
    disposition: str | None
    complexity: TcmComplexity | None
    complexity_recorded_by: str | None
    practitioner_id: str | None
    contact_due: date
    contact_met: bool
    contact_explanation: str
    visit_day: int | None
    date_of_service: date | None
    calendar_note: str | None  # a deadline in a year without holiday calendar
    codes: list[TcmCodeRead]
    contact_task: TcmDeadlineTaskRead | None
    visit_task: TcmDeadlineTaskRead | None
    contacts: list[TcmContactRead]
