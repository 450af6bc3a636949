"""Closed-loop referrals: send, read, list, and the requester's moves of the tracker."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from fhirbridge.api.access import CLINICAL, require_role, visible_patient, visible_record
from fhirbridge.api.auth import Principal, Role
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.problems import Forbidden
from fhirbridge.api.schemas.problems import problems
from fhirbridge.api.schemas.referrals import CodeIn, ReferralCreate, ReferralRead, ReferralUpdate
from fhirbridge.api.schemas.time_entries import AuditEventRead
from fhirbridge.domain import Code, Referral, TaskStatus
from fhirbridge.persistence import Store
from fhirbridge.services import referral as service
from fhirbridge.services.errors import FieldError, Rejected

router = APIRouter(prefix="/referrals", tags=["referrals"])
CREATED = status.HTTP_201_CREATED


def _visible_referral(store: Store, caller: Principal, referral_id: str) -> Referral:
    return visible_record(store, caller, "referral", referral_id, store.referrals.get)


def _requester(caller: Principal, requester_id: str | None) -> str:
    if requester_id is not None and requester_id != caller.staff_id:
        if not caller.has(Role.SUPERVISOR, Role.ADMIN):
            raise Forbidden("care managers send referrals as themselves")
        return requester_id
    if caller.staff_id is None:
        raise Rejected("referral", [FieldError("requester_id", "required")])
    return caller.staff_id


def _code(code: CodeIn | None) -> Code | None:
    return None if code is None else Code(code.system, code.code, code.display)


@router.post(
    "", status_code=CREATED, response_model=ReferralRead, responses=problems(403, 404, 422)
)
def create_referral(body: ReferralCreate, caller: Caller, work: Work) -> JSONResponse:
    """Send a referral: the ServiceRequest (active) and its Gravity fulfilment Task
    (requested) are queued for the FHIR server in the same transaction."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> ReferralRead:
        visible_patient(store, caller, body.patient_id)
        new = service.NewReferral(
            **body.model_dump(exclude={"service", "reason_code", "requester_id"}),
            service=Code(body.service.system, body.service.code, body.service.display),
            reason_code=_code(body.reason_code),
            requester_id=_requester(caller, body.requester_id),
            authored_on=work.now(),
        )
        referral = service.create_referral(store=store, new=new, actor=caller.id)
        return ReferralRead.model_validate(referral)

    return work.write(run, status_code=CREATED)


@router.get("", responses=problems(403, 404, 422))
def list_referrals(
    caller: Caller,
    work: Work,
    patient_id: Annotated[str, Query(min_length=1, max_length=64)],
    task_status: Annotated[list[TaskStatus] | None, Query()] = None,
) -> list[ReferralRead]:
    """A patient's referrals, oldest first; ``task_status`` (repeatable) keeps only those
    whose tracker is in one of the statuses (``requested`` = awaiting the performer)."""
    require_role(caller, CLINICAL)
    wanted = frozenset(task_status) if task_status else None

    def run(store: Store) -> list[ReferralRead]:
        visible_patient(store, caller, patient_id)
        found = service.list_referrals(store=store, patient_id=patient_id, task_statuses=wanted)
        return [ReferralRead.model_validate(r) for r in found]

    return work.read(run)


@router.get("/{referral_id}", responses=problems(403, 404))
def get_referral(referral_id: str, caller: Caller, work: Work) -> ReferralRead:
    require_role(caller, CLINICAL)
    return work.read(
        lambda store: ReferralRead.model_validate(_visible_referral(store, caller, referral_id))
    )


@router.patch("/{referral_id}", response_model=ReferralRead, responses=problems(403, 404, 409, 422))
def update_referral(
    referral_id: str, body: ReferralUpdate, caller: Caller, work: Work
) -> JSONResponse:
    """Move the tracker as the requester: ``cancelled`` (reason required; the order is
    revoked) or ``entered-in-error``. A status only the performer may set, or a step the R4
    Task machine forbids, is a 409 naming ``task_status`` and the rule; nothing is written."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> ReferralRead:
        _visible_referral(store, caller, referral_id)
        changed = service.change_task_status(
            store=store,
            referral_id=referral_id,
            target=body.task_status,
            reason=body.reason,
            actor=caller.id,
        )
        return ReferralRead.model_validate(changed)

    return work.write(run)


@router.get("/{referral_id}/timeline", responses=problems(403, 404))
def get_referral_timeline(referral_id: str, caller: Caller, work: Work) -> list[AuditEventRead]:
    """Who moved the referral's tracker when, oldest first: sent, the requester's moves, and
    the performer's moves as pulled from the FHIR server."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> list[AuditEventRead]:
        _visible_referral(store, caller, referral_id)
        events = service.timeline(store=store, referral_id=referral_id)
        return [AuditEventRead.model_validate(event) for event in events]

    return work.read(run)
