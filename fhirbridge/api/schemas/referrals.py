"""Closed-loop referrals: the order and its fulfilment tracker in one body."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from fhirbridge.api.schemas._base import (
    Code,
    Id,
    Incoming,
    Name,
    OptionalId,
    Outgoing,
    Text,
)
from fhirbridge.domain import ReferralKind, ReferralStatus, TaskPriority, TaskStatus

MAX_CATEGORIES = 20  # the SDOH category code system has fewer
# The pattern leaves no room for control characters.
PerformerReference = Annotated[
    str, StringConstraints(pattern=r"^Organization/[A-Za-z0-9\-.]{1,64}$")
]


class CodeIn(Incoming):
    """A code; ``system`` is a code-system alias of mappings/codesystems.yaml."""

    system: Code
    code: Code
    display: Name | None = None


class CodeRead(Outgoing):
    system: str
    code: str
    display: str | None


class ReferralCreate(Incoming):
    patient_id: Id
    kind: ReferralKind
    service: CodeIn = Field(description="what is requested (snomed, loinc or sdohcc)")
    categories: list[Code] = Field(
        default_factory=list,
        max_length=MAX_CATEGORIES,
        description="SDOH categories (sdohcc codes such as food-insecurity); "
        "at least one for a social-need referral",
    )
    reason: Text | None = None
    reason_code: CodeIn | None = None
    priority: TaskPriority | None = None
    performer_reference: PerformerReference | None = None
    performer_display: Name | None = None
    goal_id: OptionalId = None
    consent_id: OptionalId = None
    care_plan_id: OptionalId = None
    requester_id: OptionalId = Field(
        default=None, description="supervisors and admins only; care managers send as themselves"
    )


class ReferralUpdate(Incoming):
    """A move of the tracker the requester may make: cancelled (with a reason),
    entered-in-error."""

    task_status: TaskStatus
    reason: Text | None = None


class ReferralRead(Outgoing):
    id: str
    patient_id: str | None
    kind: ReferralKind | None
    status: ReferralStatus
    task_status: TaskStatus
    task_status_reason: str | None
    service: CodeRead | None
    categories: list[CodeRead]
    authored_on: datetime | None
    requester_id: str | None
    reason: str | None
    reason_code: CodeRead | None
    priority: TaskPriority | None
    performer_reference: str | None
    performer_display: str | None
    goal_id: str | None
    consent_id: str | None
    care_plan_id: str | None
    task_owner_reference: str | None
    outcomes: list[CodeRead]
    outcome_references: list[str]


__all__ = ["CodeIn", "CodeRead", "ReferralCreate", "ReferralRead", "ReferralUpdate"]
