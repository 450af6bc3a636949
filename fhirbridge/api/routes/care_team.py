"""Care-team members: the staff whose time and tasks fhirbridge records, linked to the EHR's
Practitioner. Supervisors add and change their team's members, admins every team's; care
managers read them; billing neither. Another team's member is a 404, like a missing one."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from fhirbridge.api.access import CLINICAL, require_role
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.routes.patients import MANAGERS, cleared, new_team, teams_of
from fhirbridge.api.schemas.care_team import MemberCreate, MemberRead, MemberUpdate
from fhirbridge.api.schemas.problems import problems
from fhirbridge.domain import CareTeamMember
from fhirbridge.persistence import Store
from fhirbridge.services import people

router = APIRouter(prefix="/care-team-members", tags=["care team"])


@router.get("", responses=problems(403, 422))
def list_members(caller: Caller, work: Work, team: str | None = None) -> list[MemberRead]:
    """A team's members by name: the caller's own team by default; admins name any team, or
    none for every team's."""
    require_role(caller, CLINICAL)
    return work.read(
        lambda store: [
            MemberRead.model_validate(m)
            for m in people.list_members(store=store, teams=teams_of(caller), team=team)
        ]
    )


@router.get("/{member_id}", responses=problems(403, 404))
def get_member(member_id: str, caller: Caller, work: Work) -> MemberRead:
    require_role(caller, CLINICAL)
    return work.read(
        lambda store: MemberRead.model_validate(
            people.get_member(store=store, member_id=member_id, teams=teams_of(caller))
        )
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberRead,
    responses=problems(403, 409, 422),
)
def create_member(body: MemberCreate, caller: Caller, work: Work) -> JSONResponse:
    """Add a care-team member (``practitioner_reference``, e.g. ``Practitioner/abc``, is what
    FHIR resources name them by)."""
    require_role(caller, MANAGERS)
    member = CareTeamMember(
        **body.model_dump(exclude={"team"}), team=new_team(caller, body.team, "care-team member")
    )

    def run(store: Store) -> MemberRead:
        added = people.add_member(store=store, member=member, teams=teams_of(caller))
        return MemberRead.model_validate(added)

    return work.write(run, status_code=status.HTTP_201_CREATED)


@router.patch("/{member_id}", response_model=MemberRead, responses=problems(403, 404, 409, 422))
def update_member(member_id: str, body: MemberUpdate, caller: Caller, work: Work) -> JSONResponse:
    """Change a member's name, role, Practitioner link, NPI or team (optional fields sent as
    null are emptied)."""
    require_role(caller, MANAGERS)
    changes = people.MemberChanges(
        **body.model_dump(), clear=cleared(body, frozenset({"practitioner_reference", "npi"}))
    )

    def run(store: Store) -> MemberRead:
        changed = people.change_member(
            store=store, member_id=member_id, changes=changes, teams=teams_of(caller)
        )
        return MemberRead.model_validate(changed)

    return work.write(run)
