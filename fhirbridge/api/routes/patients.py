"""Patients: links to the EHR's Patient. Supervisors add and change their team's patients,
admins every team's; care managers read them; billing neither."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fhirbridge.api.access import CLINICAL, require_role, visible_patient
from fhirbridge.api.auth import Principal, Role
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.enrollments import EnrollmentRead
from fhirbridge.api.schemas.patients import PatientCreate, PatientRead, PatientUpdate
from fhirbridge.api.schemas.problems import problems
from fhirbridge.api.schemas.time_entries import TimeEntryRead
from fhirbridge.domain import PatientLink
from fhirbridge.persistence import Store
from fhirbridge.services import people
from fhirbridge.services.errors import FieldError, Rejected

router = APIRouter(prefix="/patients", tags=["patients"])

MANAGERS = frozenset({Role.SUPERVISOR, Role.ADMIN})


def teams_of(caller: Principal) -> people.Teams:
    """The teams ``caller`` works with (``access.sees_team`` for people records)."""
    return people.Teams(caller.team, every=caller.has(Role.ADMIN))


def new_team(caller: Principal, team: str | None, kind: str) -> str:
    """The team a new record joins: the one named, else the caller's own."""
    chosen = team or caller.team
    if chosen is None:
        raise Rejected(kind, [FieldError("team", "required: the credential names no team")])
    return chosen


def cleared(body: BaseModel, optional: frozenset[str]) -> frozenset[str]:
    """The optional fields the body sets to null (to empty them, not to leave them)."""
    return frozenset(n for n in body.model_fields_set & optional if getattr(body, n) is None)


@router.get("", responses=problems(403, 422))
def list_patients(caller: Caller, work: Work, team: str | None = None) -> list[PatientRead]:
    """A team's patients: the caller's own team by default; admins name any team, or none for
    every team's."""
    require_role(caller, CLINICAL)
    return work.read(
        lambda store: [
            PatientRead.model_validate(p)
            for p in people.list_patients(store=store, teams=teams_of(caller), team=team)
        ]
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PatientRead,
    responses=problems(403, 409, 422),
)
def create_patient(body: PatientCreate, caller: Caller, work: Work) -> JSONResponse:
    """Link a patient to the EHR's Patient (``ehr_reference``, e.g. ``Patient/123``)."""
    require_role(caller, MANAGERS)
    patient = PatientLink(
        **body.model_dump(exclude={"team"}), team=new_team(caller, body.team, "patient")
    )

    def run(store: Store) -> PatientRead:
        added = people.add_patient(store=store, patient=patient, teams=teams_of(caller))
        return PatientRead.model_validate(added)

    return work.write(run, status_code=status.HTTP_201_CREATED)


@router.patch("/{patient_id}", response_model=PatientRead, responses=problems(403, 404, 409, 422))
def update_patient(
    patient_id: str, body: PatientUpdate, caller: Caller, work: Work
) -> JSONResponse:
    """Change a patient's link, MRN or team (optional fields sent as null are emptied)."""
    require_role(caller, MANAGERS)
    changes = people.PatientChanges(
        **body.model_dump(), clear=cleared(body, frozenset({"mrn_system", "mrn_value"}))
    )

    def run(store: Store) -> PatientRead:
        changed = people.change_patient(
            store=store, patient_id=patient_id, changes=changes, teams=teams_of(caller)
        )
        return PatientRead.model_validate(changed)

    return work.write(run)


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
