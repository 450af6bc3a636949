"""Closed-loop referrals to specialists and community services (Gravity SDOH pattern).

A referral is the order (what is asked for, of whom, why) plus the fulfilment tracker whose status
the performer moves. Who may set which tracker status is part of the pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from fhirbridge.domain.codes import Code
from fhirbridge.domain.task import TaskPriority, TaskStatus, TaskTransitionError, check_transition


class ReferralKind(StrEnum):
    SPECIALIST = "specialist"
    SOCIAL_NEED = "social-need"


class ReferralStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ON_HOLD = "on-hold"
    REVOKED = "revoked"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"
    UNKNOWN = "unknown"


ReferralTaskStatus = TaskStatus


class Party(StrEnum):
    REQUESTER = "requester"
    PERFORMER = "performer"


# Gravity SDOHCC TaskForReferralManagement: statuses allowed and who may set them.
_SET_BY: dict[TaskStatus, frozenset[Party]] = {
    TaskStatus.DRAFT: frozenset({Party.REQUESTER}),
    TaskStatus.REQUESTED: frozenset({Party.REQUESTER}),
    TaskStatus.ENTERED_IN_ERROR: frozenset({Party.REQUESTER}),
    TaskStatus.ACCEPTED: frozenset({Party.PERFORMER}),
    TaskStatus.REJECTED: frozenset({Party.PERFORMER}),
    TaskStatus.IN_PROGRESS: frozenset({Party.PERFORMER}),
    TaskStatus.ON_HOLD: frozenset({Party.PERFORMER}),
    TaskStatus.FAILED: frozenset({Party.PERFORMER}),
    TaskStatus.COMPLETED: frozenset({Party.PERFORMER}),
    TaskStatus.CANCELLED: frozenset({Party.REQUESTER, Party.PERFORMER}),
}
REASON_REQUIRED = frozenset(
    {TaskStatus.REJECTED, TaskStatus.CANCELLED, TaskStatus.ON_HOLD, TaskStatus.FAILED}
)


def check_referral_transition(
    current: TaskStatus, target: TaskStatus, *, by: Party, reason: str | None
) -> None:
    """Raise TaskTransitionError unless ``by`` may move a referral task to ``target``."""
    if target not in _SET_BY:
        raise TaskTransitionError(current, target, reason="status not allowed for referral tasks")
    if current != target and by not in _SET_BY[target]:
        raise TaskTransitionError(current, target, reason=f"only the {_who(target)} may set it")
    check_transition(current, target)
    if target in REASON_REQUIRED and not (reason and reason.strip()):
        raise TaskTransitionError(current, target, reason="a status reason is required")


def _who(status: TaskStatus) -> str:
    return " or ".join(sorted(p.value for p in _SET_BY[status]))


@dataclass(slots=True)
class Referral:
    """A referral and its fulfilment tracker, owned jointly with the performer."""

    id: str
    status: ReferralStatus
    patient_id: str | None = None  # None only for orders read from elsewhere without a subject
    kind: ReferralKind | None = None
    service: Code | None = None  # what is requested
    categories: list[Code] = field(default_factory=list)
    authored_on: datetime | None = None
    requester_id: str | None = None
    reason: str | None = None
    reason_code: Code | None = None
    priority: TaskPriority | None = None  # unstated means routine
    performer_reference: str | None = None  # "Organization/..." that should fulfil it
    performer_display: str | None = None
    goal_id: str | None = None
    consent_id: str | None = None
    care_plan_id: str | None = None
    task_status: TaskStatus = TaskStatus.REQUESTED
    task_status_reason: str | None = None
    task_owner_reference: str | None = None  # who claimed it; may stay empty
    outcomes: list[Code] = field(default_factory=list)  # resulting activities reported back
    outcome_references: list[str] = field(default_factory=list)  # "Procedure/..." on their side

    def move_task(self, target: TaskStatus, *, by: Party, reason: str | None = None) -> None:
        check_referral_transition(self.task_status, target, by=by, reason=reason)
        self.task_status = target
        self.task_status_reason = reason
