"""Care plans, goals and care tasks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import Field

from fhirbridge.api.schemas._base import Id, Incoming, Outgoing
from fhirbridge.domain import (
    AchievementStatus,
    CarePlanStatus,
    CareTaskKind,
    GoalLifecycle,
    TaskPriority,
    TaskStatus,
)

OptionalId = Annotated[str | None, Field(max_length=64)]


class CarePlanCreate(Incoming):
    patient_id: Annotated[str, Id]
    status: CarePlanStatus = CarePlanStatus.DRAFT
    title: Annotated[str | None, Field(max_length=500)] = None
    narrative: Annotated[str | None, Field(max_length=20_000)] = None
    enrollment_id: OptionalId = None
    author_id: OptionalId = None
    start: date | None = None
    end: date | None = None
    goal_ids: list[Annotated[str, Id]] = Field(default_factory=list)


class CarePlanUpdate(Incoming):
    status: CarePlanStatus | None = None
    title: Annotated[str | None, Field(max_length=500)] = None
    narrative: Annotated[str | None, Field(max_length=20_000)] = None
    end: date | None = None
    goal_ids: list[Annotated[str, Id]] | None = None


class CarePlanRead(Outgoing):
    id: str
    patient_id: str
    status: CarePlanStatus
    title: str | None
    narrative: str | None
    enrollment_id: str | None
    author_id: str | None
    start: date | None
    end: date | None
    goal_ids: list[str]
    task_ids: list[str]


class GoalCreate(Incoming):
    patient_id: Annotated[str, Id]
    description: Annotated[str, Field(min_length=1, max_length=2000)]
    lifecycle_status: GoalLifecycle = GoalLifecycle.PROPOSED
    achievement_status: AchievementStatus | None = None
    start: date | None = None
    expressed_by: OptionalId = None


class GoalUpdate(Incoming):
    lifecycle_status: GoalLifecycle | None = None
    achievement_status: AchievementStatus | None = None
    description: Annotated[str | None, Field(min_length=1, max_length=2000)] = None


class GoalRead(Outgoing):
    id: str
    patient_id: str
    lifecycle_status: GoalLifecycle
    achievement_status: AchievementStatus | None
    description: str | None
    start: date | None
    expressed_by: str | None


class CareTaskCreate(Incoming):
    patient_id: Annotated[str, Id]
    kind: CareTaskKind
    status: TaskStatus = TaskStatus.REQUESTED
    description: Annotated[str | None, Field(max_length=2000)] = None
    priority: TaskPriority | None = None
    owner_id: OptionalId = None
    due_start: date | None = None
    due_end: date | None = None
    care_plan_id: OptionalId = None


class CareTaskUpdate(Incoming):
    status: TaskStatus | None = None
    status_reason: Annotated[str | None, Field(max_length=2000)] = None
    description: Annotated[str | None, Field(max_length=2000)] = None
    priority: TaskPriority | None = None
    owner_id: OptionalId = None
    due_end: date | None = None


class CareTaskRead(Outgoing):
    id: str
    patient_id: str | None
    kind: CareTaskKind | None
    status: TaskStatus
    status_reason: str | None
    authored_on: datetime | None
    description: str | None
    priority: TaskPriority | None
    owner_id: str | None
    requester_id: str | None
    due_start: date | None
    due_end: date | None
    care_plan_id: str | None


__all__ = [
    "CarePlanCreate",
    "CarePlanRead",
    "CarePlanUpdate",
    "CareTaskCreate",
    "CareTaskRead",
    "CareTaskUpdate",
    "GoalCreate",
    "GoalRead",
    "GoalUpdate",
]
