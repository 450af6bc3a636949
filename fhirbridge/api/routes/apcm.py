"""The facts that fix a patient's APCM tier (see ``fhirbridge.services.apcm_facts``).

- ``GET/PUT /patients/{patient_id}/qmb-periods``: when the patient is a Qualified Medicare
  Beneficiary (a fact of the patient's coverage, so it belongs to the patient);
- ``GET/PUT /enrollments/{enrollment_id}/condition-periods``: the days each chronic condition
  was on the enrollment, so a condition added mid-year changes the tier from that month on.

PUT replaces the list. Clinical roles only; another team's patient or enrollment answers 404 as
a missing one; a period ending before it starts, or overlapping another of the same thing,
answers 422 naming ``periods[i].end`` / ``periods[i].start``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from fhirbridge.api.access import CLINICAL, require_role, visible_patient, visible_record
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.apcm import (
    ConditionPeriodsRead,
    ConditionPeriodsUpdate,
    QmbPeriodsRead,
    QmbPeriodsUpdate,
)
from fhirbridge.api.schemas.problems import problems
from fhirbridge.persistence import Store
from fhirbridge.services import apcm_facts as service

router = APIRouter(tags=["APCM"])


@router.get("/patients/{patient_id}/qmb-periods", responses=problems(403, 404))
def get_qmb_periods(patient_id: str, caller: Caller, work: Work) -> QmbPeriodsRead:
    require_role(caller, CLINICAL)

    def run(store: Store) -> QmbPeriodsRead:
        patient = visible_patient(store, caller, patient_id)
        return QmbPeriodsRead.of(patient.id, service.qmb_periods_of(store, patient_id=patient.id))

    return work.read(run)


@router.put(
    "/patients/{patient_id}/qmb-periods",
    response_model=QmbPeriodsRead,
    responses=problems(403, 404, 422),
)
def put_qmb_periods(
    patient_id: str, body: QmbPeriodsUpdate, caller: Caller, work: Work
) -> JSONResponse:
    require_role(caller, CLINICAL)

    def run(store: Store) -> QmbPeriodsRead:
        patient = visible_patient(store, caller, patient_id)
        stored = service.replace_qmb_periods(
            store,
            patient_id=patient.id,
            periods=[service.NewPeriod(p.start, p.end) for p in body.periods],
        )
        return QmbPeriodsRead.of(patient.id, stored)

    return work.write(run)


@router.get("/enrollments/{enrollment_id}/condition-periods", responses=problems(403, 404))
def get_condition_periods(enrollment_id: str, caller: Caller, work: Work) -> ConditionPeriodsRead:
    require_role(caller, CLINICAL)

    def run(store: Store) -> ConditionPeriodsRead:
        found = visible_record(store, caller, "enrollment", enrollment_id, store.enrollments.get)
        periods = service.condition_periods_of(store, enrollment_id=found.id)
        return ConditionPeriodsRead.of(found.id, periods)

    return work.read(run)


@router.put(
    "/enrollments/{enrollment_id}/condition-periods",
    response_model=ConditionPeriodsRead,
    responses=problems(403, 404, 422),
)
def put_condition_periods(
    enrollment_id: str, body: ConditionPeriodsUpdate, caller: Caller, work: Work
) -> JSONResponse:
    require_role(caller, CLINICAL)

    def run(store: Store) -> ConditionPeriodsRead:
        found = visible_record(store, caller, "enrollment", enrollment_id, store.enrollments.get)
        stored = service.replace_condition_periods(
            store,
            enrollment_id=found.id,
            periods=[service.NewPeriod(p.start, p.end, p.condition) for p in body.periods],
        )
        return ConditionPeriodsRead.of(found.id, stored)

    return work.write(run)
