from __future__ import annotations

from fastapi import APIRouter

from fhirbridge.api.access import CLINICAL, require_role, sees_team, visible_patient
from fhirbridge.api.auth import Role
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.enrollments import EnrollmentRead
from fhirbridge.api.schemas.patients import PatientRead
from fhirbridge.api.schemas.problems import problems
from fhirbridge.api.schemas.time_entries import TimeEntryRead
from fhirbridge.persistence import Store
from fhirbridge.services.errors import FieldError, Rejected

router = APIRouter(prefix="/patients", tags=["patients"])


@router.get("", responses=problems(403, 422))
def list_patients(caller: Caller, work: Work, team: str | None = None) -> list[PatientRead]:
    """A team's patients: the caller's own team; admins name the team."""
    require_role(caller, CLINICAL)
    chosen = team if caller.has(Role.ADMIN) else caller.team
    if team is not None and not sees_team(caller, team):
        chosen = None
    if chosen is None:
        raise Rejected("patient list", [FieldError("team", "name a team you belong to")])

    def run(store: Store) -> list[PatientRead]:
        return [PatientRead.model_validate(p) for p in store.patients.list_for_team(chosen)]

    return work.read(run)


@router.get("/{patient_id}", responses=problems(403, 404))
def get_patient(patient_id: str, caller: Caller, work: Work) -> PatientRead:
    require_role(caller, CLINICAL)
    return work.read(
        lambda store: PatientRead.model_validate(visible_patient(store, caller, patient_id))
    )


@router.get("/{patient_id}/enrollments", responses=problems(403, 404))
def list_enrollments(patient_id: str, caller: Caller, work: Work) -> list[EnrollmentRead]:
    require_role(caller, CLINICAL)

    def run(store: Store) -> list[EnrollmentRead]:
        visible_patient(store, caller, patient_id)
        return [
            EnrollmentRead.of(e, store.consents.list_for_enrollment(e.id))
            for e in store.enrollments.list_for_patient(patient_id)
        ]

    return work.read(run)


@router.get("/{patient_id}/time-entries", responses=problems(403, 404))
def list_time_entries(patient_id: str, caller: Caller, work: Work) -> list[TimeEntryRead]:
    """Every entry of the patient, oldest first, entered-in-error ones included."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> list[TimeEntryRead]:
        visible_patient(store, caller, patient_id)
        return [
            TimeEntryRead.model_validate(e) for e in store.time_entries.list_for_patient(patient_id)
        ]

    return work.read(run)
