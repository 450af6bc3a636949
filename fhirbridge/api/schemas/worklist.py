"""The care manager's worklist."""

from __future__ import annotations

from datetime import date, datetime

from fhirbridge.api.schemas._base import Outgoing
from fhirbridge.domain import RiskLevel, TaskPriority
from fhirbridge.services.worklist import Urgency, WorkKind


class WorkItemRead(Outgoing):
    kind: WorkKind
    urgency: Urgency
    overdue: bool
    patient_id: str | None
    risk_level: RiskLevel | None
    due_on: date | None
    summary: str
    record_kind: str | None
    record_id: str | None
    priority: TaskPriority | None
    code: str | None
    minutes: int | None
    threshold_minutes: int | None
    days_with_readings: int | None = None  # device-days: in the running 30-day period
    period_day: int | None = None  # device-days: today's day of that period


class WorklistRead(Outgoing):
    staff_id: str
    generated_at: datetime
    page: int
    page_size: int
    total: int
    items: list[WorkItemRead]
    # The billing rule year the billing-threshold items use (null: none, so none are listed);
    # on January 1, before the new year's rule file exists, the previous year's.
    rules_year: int | None
    notes: list[str]  # e.g. that an earlier year's billing rules stand in


__all__ = ["WorkItemRead", "WorklistRead"]
