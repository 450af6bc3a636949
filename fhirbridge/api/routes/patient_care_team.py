"""A patient's care team (``GET/PUT /patients/{patient_id}/care-team``), sent to the EHR as a
US Core CareTeam. Not the staff roster, which is ``/care-team-members`` (``care_team.py``).

GET answers the stored team, or (``id`` null) one proposed from the patient's enrollments; PUT
replaces the team. Clinical roles only; another team's patient answers 404 like a missing one;
a member of another team is refused (422 naming ``participants[i].member_id``) like a missing
one. See ``fhirbridge.services.patient_care_team``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from fhirbridge.api.access import CLINICAL, require_role, visible_patient
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.patient_care_team import CareTeamRead, CareTeamUpdate
from fhirbridge.api.schemas.problems import problems
from fhirbridge.persistence import Store
from fhirbridge.services import patient_care_team as service

router = APIRouter(prefix="/patients/{patient_id}/care-team", tags=["patient care teams"])


def _read(view: service.TeamView) -> CareTeamRead:
    return CareTeamRead.of(view.team, stored=view.stored, missing=view.missing)


@router.get("", responses=problems(403, 404))
def get_care_team(patient_id: str, caller: Caller, work: Work) -> CareTeamRead:
    require_role(caller, CLINICAL)

    def run(store: Store) -> CareTeamRead:
        patient = visible_patient(store, caller, patient_id)
        return _read(service.care_team_of(store, patient=patient))

    return work.read(run)


@router.put("", response_model=CareTeamRead, responses=problems(403, 404, 422))
def put_care_team(
    patient_id: str, body: CareTeamUpdate, caller: Caller, work: Work
) -> JSONResponse:
    require_role(caller, CLINICAL)

    def run(store: Store) -> CareTeamRead:
        patient = visible_patient(store, caller, patient_id)
        change = service.TeamChange(
            status=body.status,
            name=body.name,
            participants=[
                service.ParticipantChange(
                    role=p.role,
                    member_id=p.member_id,
                    external=p.external,
                    start=p.start,
                    end=p.end,
                )
                for p in body.participants
            ],
        )
        return _read(service.put_care_team(store, patient=patient, change=change))

    return work.write(run)
