"""Care-management tasks and the R4 Task state machine they follow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class TaskStatus(StrEnum):
    DRAFT = "draft"
    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    READY = "ready"
    CANCELLED = "cancelled"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    FAILED = "failed"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"


TERMINAL = frozenset(
    {
        TaskStatus.REJECTED,
        TaskStatus.CANCELLED,
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
        TaskStatus.ENTERED_IN_ERROR,
    }
)

# The base-spec machine (R4 Task, "Task state machine"). entered-in-error is reachable from any
# state because it records a mistake, not a step of work.
_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.DRAFT: frozenset({TaskStatus.REQUESTED, TaskStatus.READY, TaskStatus.CANCELLED}),
    TaskStatus.REQUESTED: frozenset(
        {
            TaskStatus.RECEIVED,
            TaskStatus.ACCEPTED,
            TaskStatus.REJECTED,
            TaskStatus.READY,
            TaskStatus.CANCELLED,
        }
    ),
    TaskStatus.RECEIVED: frozenset(
        {TaskStatus.ACCEPTED, TaskStatus.REJECTED, TaskStatus.CANCELLED}
    ),
    TaskStatus.ACCEPTED: frozenset(
        {TaskStatus.IN_PROGRESS, TaskStatus.READY, TaskStatus.CANCELLED, TaskStatus.FAILED}
    ),
    TaskStatus.READY: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED, TaskStatus.FAILED}),
    TaskStatus.IN_PROGRESS: frozenset(
        {TaskStatus.ON_HOLD, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.ON_HOLD: frozenset(
        {TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED, TaskStatus.FAILED}
    ),
}


class TaskTransitionError(ValueError):
    """A status change the R4 Task state machine does not allow."""

    def __init__(self, current: TaskStatus, target: TaskStatus, *, reason: str = "") -> None:
        self.current = current
        self.target = target
        detail = reason or "not a transition of the R4 Task state machine"
        super().__init__(f"task status {current.value} -> {target.value}: {detail}")


def allowed_next(current: TaskStatus) -> frozenset[TaskStatus]:
    if current in TERMINAL:
        return frozenset()
    return _TRANSITIONS[current] | {TaskStatus.ENTERED_IN_ERROR}


def check_transition(current: TaskStatus, target: TaskStatus) -> None:
    if current == target:
        return
    if target not in allowed_next(current):
        raise TaskTransitionError(current, target)


class CareTaskKind(StrEnum):
    CHECK_IN_CALL = "check-in-call"
    MEDICATION_REVIEW = "medication-review"
    EDUCATION = "education"
    OUTREACH_ATTEMPT = "outreach-attempt"
    CARE_PLAN_REVIEW = "care-plan-review"
    FOLLOW_UP = "follow-up"
    # Transitional care deadlines (fhirbridge.services.transitional_care).
    TCM_CONTACT = "tcm-contact"  # interactive contact within 2 business days of discharge
    TCM_VISIT = "tcm-visit"  # face-to-face visit within 7 or 14 days of discharge


class TaskPriority(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    ASAP = "asap"
    STAT = "stat"


@dataclass(slots=True)
class CareTask:
    """Work a care manager owes a patient: a call, a medication review, an outreach attempt."""

    id: str
    status: TaskStatus
    patient_id: str | None = None  # tasks read from other systems need not be about a patient
    kind: CareTaskKind | None = None
    authored_on: datetime | None = None
    description: str | None = None
    priority: TaskPriority | None = None  # unstated means routine
    owner_id: str | None = None
    requester_id: str | None = None
    due_start: date | None = None
    due_end: date | None = None
    status_reason: str | None = None
    care_plan_id: str | None = None

    def move_to(self, target: TaskStatus, *, reason: str | None = None) -> None:
        check_transition(self.status, target)
        self.status = target
        self.status_reason = reason
