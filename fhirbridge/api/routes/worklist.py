"""The care manager's worklist: check-ins, tasks, referrals, billing thresholds, conflicts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fhirbridge.api.access import CLINICAL, require_role, sees_team
from fhirbridge.api.auth import Principal, Role
from fhirbridge.api.deps import Caller, State, Work
from fhirbridge.api.problems import Forbidden
from fhirbridge.api.schemas.problems import problems
from fhirbridge.api.schemas.worklist import WorklistRead
from fhirbridge.persistence import Store
from fhirbridge.services import worklist as service
from fhirbridge.services.errors import FieldError, NotFound, Rejected

router = APIRouter(prefix="/worklist", tags=["worklist"])


def whose_worklist(caller: Principal, staff_id: str | None) -> str:
    if caller.has(Role.SUPERVISOR, Role.ADMIN):
        chosen = staff_id or caller.staff_id
        if chosen is None:
            raise Rejected("worklist", [FieldError("staff_id", "required")])
        return chosen
    if caller.staff_id is None:
        raise Forbidden("the credential names no staff member (staff_id claim)")
    if staff_id is not None and staff_id != caller.staff_id:
        raise Forbidden("care managers see only their own worklist")
    return caller.staff_id


@router.get("", responses=problems(403, 404, 422))
def get_worklist(
    caller: Caller,
    work: Work,
    state: State,
    staff_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WorklistRead:
    """One page of a care manager's worklist, most urgent first (order and contents: see
    ``fhirbridge.services.worklist``). Care managers see their own; supervisors and admins
    name a member of a team they see."""
    require_role(caller, CLINICAL)
    chosen = whose_worklist(caller, staff_id)
    policy = service.WorklistPolicy.from_settings(state.settings)
    now = work.now()

    def run(store: Store) -> WorklistRead:
        member = store.worklist_rows.member(chosen)
        if member is None or not sees_team(caller, member.team):
            raise NotFound("care team member", chosen)
        found = service.build_worklist(
            store=store,
            staff_id=chosen,
            now=now,
            tz=work.tz,
            policy=policy,
            rules=service.threshold_rules(now.astimezone(work.tz).year),
            page=page,
            page_size=page_size,
            member=member,
        )
        return WorklistRead.model_validate(found)

    return work.read(run)
