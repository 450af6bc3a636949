"""The patient page: enrollments and consent, care plans with goals and targets, tasks with the
status moves the caller may make, referrals with their timeline, time entries with their audit
trail, and the FHIR view of each record. Also the team's patient list and the task moves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from fhirbridge.api.access import CLINICAL, check_may_change_task, require_role, visible_patient
from fhirbridge.api.problems import Problem
from fhirbridge.api.routes import care_plans as care_plan_routes
from fhirbridge.api.routes import fhir_view as fhir_view_routes
from fhirbridge.api.routes.patients import teams_of
from fhirbridge.api.schemas.care_plans import CareTaskUpdate
from fhirbridge.domain import CareTask, ContactMode, Program, TaskStatus, TimeEntryActivity
from fhirbridge.domain.task import allowed_next
from fhirbridge.persistence import Store
from fhirbridge.persistence.repositories.audit import AuditEvent
from fhirbridge.services import people, timetracking
from fhirbridge.services import referral as referral_service
from fhirbridge.services.errors import WorkflowError
from fhirbridge.web.pages import PageRoute, page, page_work, refusal
from fhirbridge.web.session import CheckedSession, SignedIn

router = APIRouter(prefix="/app", route_class=PageRoute, include_in_schema=False)


def entry_form_choices() -> dict[str, list[str]]:
    """The choices of the timer's and the time-entry forms."""
    return {
        "programs": [p.value for p in Program],
        "activities": [a.value for a in TimeEntryActivity],
        "modes": [m.value for m in ContactMode],
    }


@dataclass(frozen=True, slots=True)
class TaskRow:
    task: CareTask
    moves: tuple[TaskStatus, ...]  # the status moves offered to this caller


@router.get("/patients")
def patient_list(request: Request, session: SignedIn) -> Response:
    require_role(session.principal, CLINICAL)

    def build(store: Store) -> Mapping[str, Any]:
        teams = teams_of(session.principal)
        return {"patients": people.list_patients(store=store, teams=teams)}

    return page(request, session, "patients.html", build)


def patient_context(store: Store, session: SignedIn, patient_id: str) -> dict[str, Any]:
    """Everything the patient page shows (also re-rendered with a refused form's errors)."""
    caller = session.principal
    patient = visible_patient(store, caller, patient_id)
    enrollments = [
        (e, store.consents.list_for_enrollment(e.id))
        for e in store.enrollments.list_for_patient(patient.id)
    ]
    tasks = [TaskRow(t, _moves(caller, t)) for t in store.care_tasks.list_for_patient(patient.id)]
    entries = store.time_entries.list_for_patient(patient.id)
    trails: dict[str, list[AuditEvent]] = {
        e.id: timetracking.audit_trail(store=store, entry_id=e.id) for e in entries
    }
    referrals = store.referrals.list_for_patient(patient.id)
    timelines = {r.id: referral_service.timeline(store=store, referral_id=r.id) for r in referrals}
    return {
        "patient": patient,
        "enrollments": enrollments,
        "care_plans": store.care_plans.list_for_patient(patient.id),
        "goals": {g.id: g for g in store.goals.list_for_patient(patient.id)},
        "tasks": tasks,
        "referrals": referrals,
        "timelines": timelines,
        "entries": entries,
        "trails": trails,
        "choices": entry_form_choices(),
    }


def _moves(caller: Any, task: CareTask) -> tuple[TaskStatus, ...]:
    try:
        check_may_change_task(caller, task)
    except Problem:
        return ()
    return tuple(sorted(allowed_next(task.status), key=list(TaskStatus).index))


@router.get("/patients/{patient_id}")
def patient_page(patient_id: str, request: Request, session: SignedIn) -> Response:
    require_role(session.principal, CLINICAL)
    return page(
        request,
        session,
        "patient.html",
        lambda store: {**patient_context(store, session, patient_id), "errors": {}},
    )


@router.post("/care-tasks/{task_id}/status")
def move_task(
    task_id: str,
    request: Request,
    session: CheckedSession,
    status: Annotated[TaskStatus, Form()],
    patient_id: Annotated[str, Form(max_length=64)],
) -> Response:
    """Move a task through the REST route's own update (its checks, its refusals)."""
    work = page_work(request, session)
    try:
        care_plan_routes.update_task(
            task_id, CareTaskUpdate(status=status), session.principal, work
        )
    except (WorkflowError, Problem) as error:
        refused = refusal(error)
        if refused is None:
            raise
        return page(
            request,
            session,
            "patient.html",
            lambda store: patient_context(store, session, patient_id),
            status_code=refused.status,
            extra={"errors": {}, "task_refusal": (task_id, refused)},
        )
    return RedirectResponse(f"/app/patients/{patient_id}#task-{task_id}", status_code=303)


@router.get("/fhir/{kind}/{record_id}")
def fhir_page(
    kind: fhir_view_routes.ViewKind, record_id: str, request: Request, session: SignedIn
) -> Response:
    """The FHIR resource a record maps to, as ``GET /fhir-view/{kind}/{id}`` answers it."""
    work = page_work(request, session)
    answer = fhir_view_routes.fhir_view(kind, record_id, session.principal, work)
    resource = json.loads(bytes(answer.body))
    return page(
        request,
        session,
        "fhir.html",
        lambda store: {},
        extra={
            "kind": kind.value,
            "record_id": record_id,
            "resource": json.dumps(resource, indent=2, sort_keys=True),
        },
    )
