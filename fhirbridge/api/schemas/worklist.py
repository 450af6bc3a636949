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


class WorklistRead(Outgoing):
    staff_id: str
    generated_at: datetime
    page: int
    page_size: int
    total: int
    items: list[WorkItemRead]


__all__ = ["WorkItemRead", "WorklistRead"]
