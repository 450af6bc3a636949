"""Transitional care (TCM): a patient's periods with deadlines and verdicts; contacts,
unsuccessful attempts and the visit; the complexity the care team records.

Periods are opened by discharges (pull, notification), never through this API. Access as for
every clinical record: the caller's team's patients; another team's period answers 404 as a
missing one. Care managers record contacts as themselves; supervisors name a team member.
"""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from fhirbridge import wiring
from fhirbridge.api.access import (
    CLINICAL,
    acting_staff,
    require_role,
    visible_patient,
    visible_record,
)
from fhirbridge.api.auth import Principal
from fhirbridge.api.deps import Caller, State, Work
from fhirbridge.api.schemas.problems import problems
from fhirbridge.api.schemas.transitional_care import (
    TcmCodeRead,
    TcmComplexityUpdate,
    TcmContactCreate,
    TcmContactRead,
    TcmDeadlineTaskRead,
    TcmPeriodRead,
)
from fhirbridge.domain import CareTask
from fhirbridge.domain.transitional_care import TcmPeriod
from fhirbridge.persistence import Store
from fhirbridge.services import transitional_care as service

router = APIRouter(tags=["transitional care"])
CREATED = status.HTTP_201_CREATED


def _period(store: Store, caller: Principal, period_id: str) -> TcmPeriod:
    return visible_record(store, caller, "TCM period", period_id, store.tcm_periods.get)


def _task(task: CareTask | None) -> TcmDeadlineTaskRead | None:
    return None if task is None else TcmDeadlineTaskRead.model_validate(task)


def _read(view: service.TcmView) -> TcmPeriodRead:
    period, judgement = view.period, view.judgement
    return TcmPeriodRead(
        id=period.id,
        patient_id=period.patient_id,
        discharge=period.discharge_key,
        discharged_on=period.discharged_on,
        last_day=period.last_day,
        status=period.status,
        setting=period.setting,
        disposition=period.disposition,
        complexity=period.complexity,
        complexity_recorded_by=period.complexity_recorded_by,
        practitioner_id=period.practitioner_id,
        contact_due=judgement.contact_due.due,
        contact_met=judgement.contact_met,
        contact_explanation=judgement.contact_explanation,
        visit_day=judgement.visit_day,
        date_of_service=judgement.date_of_service,
        calendar_note=view.calendar_note,
        codes=[TcmCodeRead.model_validate(v) for v in judgement.verdicts],
        contact_task=_task(view.contact_task),
        visit_task=_task(view.visit_task),
        contacts=[TcmContactRead.model_validate(c) for c in view.contacts],
    )


def _view(store: Store, policy: service.TcmPolicy, period: TcmPeriod) -> TcmPeriodRead:
    views = service.periods_of(store=store, patient_id=period.patient_id, policy=policy)
    return _read(next(v for v in views if v.period.id == period.id))


@router.get(
    "/patients/{patient_id}/tcm-periods",
    response_model=list[TcmPeriodRead],
    responses=problems(403, 404),
)
def list_periods(patient_id: str, caller: Caller, state: State, work: Work) -> list[TcmPeriodRead]:
    """The patient's TCM periods, oldest first, with deadlines, tasks and verdicts."""
    require_role(caller, CLINICAL)
    policy = wiring.transitional_care_policy(state.settings, state.clock)

    def run(store: Store) -> list[TcmPeriodRead]:
        visible_patient(store, caller, patient_id)
        return [
            _read(v) for v in service.periods_of(store=store, patient_id=patient_id, policy=policy)
        ]

    return work.read(run)


@router.get("/tcm-periods/{period_id}", responses=problems(403, 404))
def get_period(period_id: str, caller: Caller, state: State, work: Work) -> TcmPeriodRead:
    require_role(caller, CLINICAL)
    policy = wiring.transitional_care_policy(state.settings, state.clock)
    return work.read(lambda store: _view(store, policy, _period(store, caller, period_id)))


@router.post(
    "/tcm-periods/{period_id}/contacts",
    status_code=CREATED,
    response_model=TcmContactRead,
    responses=problems(403, 404, 422),
)
def record_contact(
    period_id: str, body: TcmContactCreate, caller: Caller, state: State, work: Work
) -> JSONResponse:
    """Record an interactive contact, a documented unsuccessful attempt or the face-to-face
    visit; the deadline task it meets is completed."""
    require_role(caller, CLINICAL)
    policy = wiring.transitional_care_policy(state.settings, state.clock)

    def run(store: Store) -> TcmContactRead:
        period = _period(store, caller, period_id)
        staff_id = acting_staff(store, caller, body.staff_id)
        contact = service.record_contact(
            store=store,
            period_id=period.id,
            new=service.NewTcmContact(
                kind=body.kind,
                occurred_at=body.occurred_at,
                staff_id=staff_id,
                mode=body.mode,
                minutes=body.minutes,
                note=body.note,
            ),
            policy=policy,
        )
        return TcmContactRead.model_validate(contact)

    return work.write(run, status_code=CREATED)


@router.put(
    "/tcm-periods/{period_id}/complexity",
    response_model=TcmPeriodRead,
    responses=problems(403, 404, 422),
)
def set_complexity(
    period_id: str, body: TcmComplexityUpdate, caller: Caller, state: State, work: Work
) -> JSONResponse:
    """Record moderate or high complexity; the visit task's due day follows (7 or 14 days)."""
    require_role(caller, CLINICAL)
    policy = wiring.transitional_care_policy(state.settings, state.clock)

    def run(store: Store) -> TcmPeriodRead:
        period = _period(store, caller, period_id)
        recorded_by = acting_staff(store, caller, body.recorded_by)
        changed = service.set_complexity(
            store=store,
            period_id=period.id,
            complexity=body.complexity,
            recorded_by=recorded_by,
            policy=policy,
        )
        return _view(store, policy, changed)

    return work.write(run)
