"""Care plans, goals and care tasks."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from fhirbridge.api.access import (
    CLINICAL,
    check_may_change_task,
    require_role,
    visible_patient,
    visible_record,
)
from fhirbridge.api.auth import Principal
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.care_plans import (
    CarePlanCreate,
    CarePlanRead,
    CarePlanUpdate,
    CareTaskCreate,
    CareTaskRead,
    CareTaskUpdate,
    GoalCreate,
    GoalRead,
    GoalUpdate,
)
from fhirbridge.api.schemas.problems import problems
from fhirbridge.domain import CarePlan, CareTask, Goal
from fhirbridge.persistence import Store
from fhirbridge.services import careplan as service

router = APIRouter(tags=["care plans"])
CREATED = status.HTTP_201_CREATED


# Each route finds its record through one of these (another team's record is "not found", as
# a missing one), then hands the change to the service.
def _plan(store: Store, caller: Principal, care_plan_id: str) -> CarePlan:
    return visible_record(store, caller, "care plan", care_plan_id, store.care_plans.get)


def _goal(store: Store, caller: Principal, goal_id: str) -> Goal:
    return visible_record(store, caller, "goal", goal_id, store.goals.get)


def _task(store: Store, caller: Principal, task_id: str) -> CareTask:
    return visible_record(store, caller, "care task", task_id, store.care_tasks.get)


@router.post(
    "/care-plans",
    status_code=CREATED,
    response_model=CarePlanRead,
    responses=problems(403, 404, 422),
)
def create_care_plan(body: CarePlanCreate, caller: Caller, work: Work) -> JSONResponse:
    require_role(caller, CLINICAL)

    def run(store: Store) -> CarePlanRead:
        visible_patient(store, caller, body.patient_id)
        plan = service.create_care_plan(
            store=store,
            new=service.NewCarePlan(
                patient_id=body.patient_id,
                status=body.status,
                title=body.title,
                narrative=body.narrative,
                enrollment_id=body.enrollment_id,
                author_id=body.author_id or caller.staff_id,
                start=body.start,
                end=body.end,
                goal_ids=list(body.goal_ids),
            ),
        )
        return CarePlanRead.model_validate(plan)

    return work.write(run, status_code=CREATED)


@router.get("/care-plans/{care_plan_id}", responses=problems(403, 404))
def get_care_plan(care_plan_id: str, caller: Caller, work: Work) -> CarePlanRead:
    require_role(caller, CLINICAL)

    return work.read(lambda store: CarePlanRead.model_validate(_plan(store, caller, care_plan_id)))


@router.patch(
    "/care-plans/{care_plan_id}", response_model=CarePlanRead, responses=problems(403, 404, 422)
)
def update_care_plan(
    care_plan_id: str, body: CarePlanUpdate, caller: Caller, work: Work
) -> JSONResponse:
    require_role(caller, CLINICAL)

    def run(store: Store) -> CarePlanRead:
        plan = _plan(store, caller, care_plan_id)
        changes = service.CarePlanChanges(
            status=body.status,
            title=body.title,
            narrative=body.narrative,
            end=body.end,
            goal_ids=body.goal_ids,
        )
        updated = service.update_care_plan(store=store, care_plan_id=plan.id, changes=changes)
        return CarePlanRead.model_validate(updated)

    return work.write(run)


@router.post(
    "/goals", status_code=CREATED, response_model=GoalRead, responses=problems(403, 404, 422)
)
def create_goal(body: GoalCreate, caller: Caller, work: Work) -> JSONResponse:
    require_role(caller, CLINICAL)

    def run(store: Store) -> GoalRead:
        visible_patient(store, caller, body.patient_id)
        goal = service.create_goal(
            store=store,
            new=service.NewGoal(
                patient_id=body.patient_id,
                description=body.description,
                lifecycle_status=body.lifecycle_status,
                achievement_status=body.achievement_status,
                start=body.start,
                expressed_by=body.expressed_by,
                concern_ids=tuple(body.concern_ids),
            ),
        )
        return GoalRead.model_validate(goal)

    return work.write(run, status_code=CREATED)


@router.get("/goals/{goal_id}", responses=problems(403, 404))
def get_goal(goal_id: str, caller: Caller, work: Work) -> GoalRead:
    require_role(caller, CLINICAL)

    return work.read(lambda store: GoalRead.model_validate(_goal(store, caller, goal_id)))


@router.patch("/goals/{goal_id}", response_model=GoalRead, responses=problems(403, 404, 422))
def update_goal(goal_id: str, body: GoalUpdate, caller: Caller, work: Work) -> JSONResponse:
    require_role(caller, CLINICAL)

    def run(store: Store) -> GoalRead:
        goal = _goal(store, caller, goal_id)
        changes = service.GoalChanges(
            lifecycle_status=body.lifecycle_status,
            achievement_status=body.achievement_status,
            description=body.description,
        )
        return GoalRead.model_validate(
            service.update_goal(store=store, goal_id=goal.id, changes=changes)
        )

    return work.write(run)


@router.post(
    "/care-tasks",
    status_code=CREATED,
    response_model=CareTaskRead,
    responses=problems(403, 404, 422),
)
def create_task(body: CareTaskCreate, caller: Caller, work: Work) -> JSONResponse:
    require_role(caller, CLINICAL)

    def run(store: Store) -> CareTaskRead:
        visible_patient(store, caller, body.patient_id)
        task = service.create_task(
            store=store,
            new=service.NewCareTask(
                patient_id=body.patient_id,
                kind=body.kind,
                authored_on=work.now(),
                status=body.status,
                description=body.description,
                priority=body.priority,
                owner_id=body.owner_id,
                requester_id=caller.staff_id,
                due_start=body.due_start,
                due_end=body.due_end,
                care_plan_id=body.care_plan_id,
            ),
        )
        return CareTaskRead.model_validate(task)

    return work.write(run, status_code=CREATED)


@router.get("/care-tasks/{task_id}", responses=problems(403, 404))
def get_task(task_id: str, caller: Caller, work: Work) -> CareTaskRead:
    require_role(caller, CLINICAL)

    return work.read(lambda store: CareTaskRead.model_validate(_task(store, caller, task_id)))


@router.patch(
    "/care-tasks/{task_id}", response_model=CareTaskRead, responses=problems(403, 404, 409, 422)
)
def update_task(task_id: str, body: CareTaskUpdate, caller: Caller, work: Work) -> JSONResponse:
    """Change a task; a status change must follow the R4 Task state machine (else 409)."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> CareTaskRead:
        task = _task(store, caller, task_id)
        check_may_change_task(caller, task)
        changes = service.CareTaskChanges(
            status=body.status,
            status_reason=body.status_reason,
            description=body.description,
            priority=body.priority,
            owner_id=body.owner_id,
            due_end=body.due_end,
        )
        return CareTaskRead.model_validate(
            service.update_task(store=store, task_id=task.id, changes=changes)
        )

    return work.write(run)
