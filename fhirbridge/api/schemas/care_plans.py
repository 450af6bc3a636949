"""Care plans, goals and care tasks."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from fhirbridge.api.schemas._base import Day, Id, Incoming, OptionalId, Outgoing, Text, Title
from fhirbridge.domain import (
    AchievementStatus,
    CarePlanStatus,
    CareTaskKind,
    GoalLifecycle,
    TaskPriority,
    TaskStatus,
)

MAX_LISTED = 100  # goals one plan lists: far above any real plan, far below a flood


class CarePlanCreate(Incoming):
    patient_id: Id
    status: CarePlanStatus = CarePlanStatus.DRAFT
    title: Title | None = None
    narrative: Text | None = None
    enrollment_id: OptionalId = None
    author_id: OptionalId = None
    start: Day | None = None
    end: Day | None = None
    goal_ids: list[Id] = Field(default_factory=list, max_length=MAX_LISTED)


class CarePlanUpdate(Incoming):
    status: CarePlanStatus | None = None
    title: Title | None = None
    narrative: Text | None = None
    end: Day | None = None
    goal_ids: list[Id] | None = Field(default=None, max_length=MAX_LISTED)


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
    patient_id: Id
    description: Text
    lifecycle_status: GoalLifecycle = GoalLifecycle.PROPOSED
    achievement_status: AchievementStatus | None = None
    start: Day | None = None
    expressed_by: OptionalId = None
    # The same patient's health concerns (a screening's) the goal addresses.
    concern_ids: list[Id] = Field(default_factory=list, max_length=MAX_LISTED)


class GoalUpdate(Incoming):
    lifecycle_status: GoalLifecycle | None = None
    achievement_status: AchievementStatus | None = None
    description: Text | None = None


class GoalRead(Outgoing):
    id: str
    patient_id: str
    lifecycle_status: GoalLifecycle
    achievement_status: AchievementStatus | None
    description: str | None
    start: date | None
    expressed_by: str | None
    concern_ids: list[str]  # our health concerns the goal addresses


class CareTaskCreate(Incoming):
    patient_id: Id
    kind: CareTaskKind
    status: TaskStatus = TaskStatus.REQUESTED
    description: Text | None = None
    priority: TaskPriority | None = None
    owner_id: OptionalId = None
    due_start: Day | None = None
    due_end: Day | None = None
    care_plan_id: OptionalId = None


class CareTaskUpdate(Incoming):
    status: TaskStatus | None = None
    status_reason: Text | None = None
    description: Text | None = None
    priority: TaskPriority | None = None
    owner_id: OptionalId = None
    due_end: Day | None = None


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
