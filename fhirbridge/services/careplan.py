"""Care plans, the goals they pursue and the tasks that carry them out.

Task status changes follow the R4 Task state machine of ``fhirbridge.domain.task``; a change
it does not allow is refused with ``TransitionRefused`` (field ``status``) and writes nothing.
A task created under a care plan is added to the plan's activities, and the plan is queued for
the FHIR server again with it.

Every reference a request makes is checked (422 naming the field, all in one ``Rejected``): a
care team member (author, owner, requester, who expressed a goal) must exist and belong to the
patient's team; an enrollment, goal or care plan must be the same patient's. The reason is the
same whether the record is missing or another team's, so it tells nothing about other teams.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from fhirbridge.domain import (
    AchievementStatus,
    CarePlan,
    CarePlanStatus,
    CareTask,
    CareTaskKind,
    Goal,
    GoalLifecycle,
    TaskPriority,
    TaskStatus,
    TaskTransitionError,
)
from fhirbridge.persistence import Store
from fhirbridge.services.changes import apply_changes
from fhirbridge.services.errors import FieldError, NotFound, Rejected, TransitionRefused

__all__ = [
    "CarePlanChanges",
    "CareTaskChanges",
    "GoalChanges",
    "NewCarePlan",
    "NewCareTask",
    "NewGoal",
    "create_care_plan",
    "create_goal",
    "create_task",
    "get_care_plan",
    "get_goal",
    "get_task",
    "update_care_plan",
    "update_goal",
    "update_task",
]


@dataclass(frozen=True, slots=True)
class NewCarePlan:
    patient_id: str
    status: CarePlanStatus = CarePlanStatus.DRAFT
    title: str | None = None
    narrative: str | None = None
    enrollment_id: str | None = None
    author_id: str | None = None
    start: date | None = None
    end: date | None = None
    goal_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CarePlanChanges:
    status: CarePlanStatus | None = None
    title: str | None = None
    narrative: str | None = None
    end: date | None = None
    goal_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class NewGoal:
    patient_id: str
    description: str
    lifecycle_status: GoalLifecycle = GoalLifecycle.PROPOSED
    achievement_status: AchievementStatus | None = None
    start: date | None = None
    expressed_by: str | None = None
    concern_ids: tuple[str, ...] = ()  # the same patient's health concerns


@dataclass(frozen=True, slots=True)
class GoalChanges:
    lifecycle_status: GoalLifecycle | None = None
    achievement_status: AchievementStatus | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class NewCareTask:
    patient_id: str
    kind: CareTaskKind
    authored_on: datetime
    status: TaskStatus = TaskStatus.REQUESTED
    description: str | None = None
    priority: TaskPriority | None = None
    owner_id: str | None = None
    requester_id: str | None = None
    due_start: date | None = None
    due_end: date | None = None
    care_plan_id: str | None = None


@dataclass(frozen=True, slots=True)
class CareTaskChanges:
    status: TaskStatus | None = None
    status_reason: str | None = None
    description: str | None = None
    priority: TaskPriority | None = None
    owner_id: str | None = None
    due_end: date | None = None


# -- care plans --------------------------------------------------------------------------


def create_care_plan(*, store: Store, new: NewCarePlan) -> CarePlan:
    team = _patient_team(store, new.patient_id)
    errors = _period_errors(new.start, new.end)
    errors.extend(_goal_errors(store, new.patient_id, new.goal_ids))
    if new.enrollment_id is not None:
        enrollment = store.enrollments.get(new.enrollment_id)
        if enrollment is None or enrollment.patient_id != new.patient_id:
            errors.append(FieldError("enrollment_id", "no such enrollment for this patient"))
    errors.extend(_member_errors(store, team, author_id=new.author_id))
    if errors:
        raise Rejected("care plan", errors)
    plan = CarePlan(
        id=uuid.uuid4().hex,
        patient_id=new.patient_id,
        status=new.status,
        title=new.title,
        narrative=new.narrative,
        enrollment_id=new.enrollment_id,
        author_id=new.author_id,
        start=new.start,
        end=new.end,
        goal_ids=list(new.goal_ids),
    )
    store.save(plan)
    return plan


def get_care_plan(*, store: Store, care_plan_id: str) -> CarePlan:
    plan = store.care_plans.get(care_plan_id)
    if plan is None:
        raise NotFound("care plan", care_plan_id)
    return plan


def update_care_plan(*, store: Store, care_plan_id: str, changes: CarePlanChanges) -> CarePlan:
    plan = get_care_plan(store=store, care_plan_id=care_plan_id)
    errors = _period_errors(plan.start, changes.end)
    if changes.goal_ids is not None:
        errors.extend(_goal_errors(store, plan.patient_id, changes.goal_ids))
    if errors:
        raise Rejected("care plan", errors)
    apply_changes(plan, changes)
    store.save(plan)
    return plan


# -- goals -------------------------------------------------------------------------------


def create_goal(*, store: Store, new: NewGoal) -> Goal:
    team = _patient_team(store, new.patient_id)
    errors = _member_errors(store, team, expressed_by=new.expressed_by)
    errors.extend(_concern_errors(store, new.patient_id, new.concern_ids))
    if errors:
        raise Rejected("goal", errors)
    goal = Goal(
        id=uuid.uuid4().hex,
        patient_id=new.patient_id,
        lifecycle_status=new.lifecycle_status,
        description=new.description,
        achievement_status=new.achievement_status,
        start=new.start,
        expressed_by=new.expressed_by,
        concern_ids=list(new.concern_ids),
    )
    store.save(goal)
    return goal


def get_goal(*, store: Store, goal_id: str) -> Goal:
    goal = store.goals.get(goal_id)
    if goal is None:
        raise NotFound("goal", goal_id)
    return goal


def update_goal(*, store: Store, goal_id: str, changes: GoalChanges) -> Goal:
    goal = get_goal(store=store, goal_id=goal_id)
    apply_changes(goal, changes)
    store.save(goal)
    return goal


# -- care tasks --------------------------------------------------------------------------


def create_task(*, store: Store, new: NewCareTask) -> CareTask:
    team = _patient_team(store, new.patient_id)
    errors = _member_errors(store, team, owner_id=new.owner_id, requester_id=new.requester_id)
    if new.due_start is not None and new.due_end is not None and new.due_end < new.due_start:
        errors.append(FieldError("due_end", "before due_start"))
    plan = None
    if new.care_plan_id is not None:
        plan = store.care_plans.get(new.care_plan_id)
        if plan is None or plan.patient_id != new.patient_id:
            errors.append(FieldError("care_plan_id", "no such care plan for this patient"))
    if errors:
        raise Rejected("care task", errors)
    task = CareTask(
        id=uuid.uuid4().hex,
        status=new.status,
        patient_id=new.patient_id,
        kind=new.kind,
        authored_on=new.authored_on,
        description=new.description,
        priority=new.priority,
        owner_id=new.owner_id,
        requester_id=new.requester_id,
        due_start=new.due_start,
        due_end=new.due_end,
        care_plan_id=new.care_plan_id,
    )
    store.save(task)
    if plan is not None:
        plan.task_ids.append(task.id)
        store.save(plan)
    return task


def get_task(*, store: Store, task_id: str) -> CareTask:
    task = store.care_tasks.get(task_id)
    if task is None:
        raise NotFound("care task", task_id)
    return task


def update_task(*, store: Store, task_id: str, changes: CareTaskChanges) -> CareTask:
    task = get_task(store=store, task_id=task_id)
    team = None if task.patient_id is None else _patient_team(store, task.patient_id)
    errors = _member_errors(store, team, owner_id=changes.owner_id)
    if errors:
        raise Rejected("care task", errors)
    if changes.status is not None:
        try:
            task.move_to(changes.status, reason=changes.status_reason)
        except TaskTransitionError as error:
            detail = str(error).split(": ", 1)[-1]
            raise TransitionRefused(
                "care task", task_id, error.current.value, error.target.value, detail
            ) from error
    # The status went through the state machine above, with its reason.
    apply_changes(task, changes, skip=frozenset({"status", "status_reason"}))
    store.save(task)
    return task


# -- checks ------------------------------------------------------------------------------


def _patient_team(store: Store, patient_id: str) -> str:
    patient = store.patients.get(patient_id)
    if patient is None:
        raise NotFound("patient", patient_id)
    return patient.team


def _period_errors(start: date | None, end: date | None) -> list[FieldError]:
    if start is not None and end is not None and end < start:
        return [FieldError("end", "before start")]
    return []


def _goal_errors(store: Store, patient_id: str, goal_ids: list[str]) -> list[FieldError]:
    for goal_id in goal_ids:
        goal = store.goals.get(goal_id)
        if goal is None or goal.patient_id != patient_id:
            return [FieldError("goal_ids", f"no goal {goal_id} for this patient")]
    return []


def _concern_errors(store: Store, patient_id: str, concern_ids: Sequence[str]) -> list[FieldError]:
    for concern_id in concern_ids:
        concern = store.health_concerns.get(concern_id)
        if concern is None or concern.patient_id != patient_id:
            return [FieldError("concern_ids", f"no health concern {concern_id} for this patient")]
    return []


def _member_errors(store: Store, team: str | None, **members: str | None) -> list[FieldError]:
    """A member of ``team`` for each named id (any team's member when the record has no patient
    to take a team from)."""
    errors = []
    for name, member_id in members.items():
        member = None if member_id is None else store.care_team.get(member_id)
        if member_id is not None and (member is None or team not in (None, member.team)):
            errors.append(FieldError(name, "no such care team member"))
    return errors
