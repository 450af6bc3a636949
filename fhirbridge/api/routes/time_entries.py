"""Time entries: record, read, edit, delete (entered-in-error, kept) and the audit trail."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from fhirbridge.api.access import (
    CLINICAL,
    acting_staff,
    check_may_change_entry,
    require_role,
    visible_patient,
)
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.problems import problems
from fhirbridge.api.schemas.time_entries import (
    AuditEventRead,
    TimeEntryCreate,
    TimeEntryRead,
    TimeEntryUpdate,
)
from fhirbridge.domain import TimeEntry
from fhirbridge.persistence import Store
from fhirbridge.services import timetracking
from fhirbridge.services.errors import NotFound

router = APIRouter(prefix="/time-entries", tags=["time entries"])


def visible_entry(store: Store, caller: Caller, entry_id: str) -> TimeEntry:
    entry = store.time_entries.get(entry_id)
    if entry is None:
        raise NotFound("time entry", entry_id)
    try:
        visible_patient(store, caller, entry.patient_id)
    except NotFound as error:
        raise NotFound("time entry", entry_id) from error
    return entry


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TimeEntryRead,
    responses=problems(403, 404, 409, 422),
)
def create_time_entry(body: TimeEntryCreate, caller: Caller, work: Work) -> JSONResponse:
    """Record a finished entry. Every rule of ``services.timetracking`` is checked; a breach
    answers 422 naming the field and writes nothing, time the staff member already recorded
    answers 409 naming the entry holding it."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> TimeEntryRead:
        visible_patient(store, caller, body.patient_id)
        new = timetracking.NewTimeEntry(
            **body.model_dump(exclude={"staff_id"}),
            staff_id=acting_staff(store, caller, body.staff_id),
        )
        entry = timetracking.record_entry(
            store=store, new=new, actor=caller.id, now=work.now(), tz=work.tz
        )
        return TimeEntryRead.model_validate(entry)

    return work.write(run, status_code=status.HTTP_201_CREATED)


@router.get("/{entry_id}", responses=problems(403, 404))
def get_time_entry(entry_id: str, caller: Caller, work: Work) -> TimeEntryRead:
    require_role(caller, CLINICAL)
    return work.read(
        lambda store: TimeEntryRead.model_validate(visible_entry(store, caller, entry_id))
    )


@router.patch("/{entry_id}", response_model=TimeEntryRead, responses=problems(403, 404, 409, 422))
def update_time_entry(
    entry_id: str, body: TimeEntryUpdate, caller: Caller, work: Work
) -> JSONResponse:
    """Edit an entry; the rules are checked again and the change is audited."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> TimeEntryRead:
        check_may_change_entry(caller, visible_entry(store, caller, entry_id))
        edited = timetracking.edit_entry(
            store=store,
            entry_id=entry_id,
            changes=timetracking.TimeEntryChanges(**body.model_dump()),
            actor=caller.id,
            now=work.now(),
            tz=work.tz,
        )
        return TimeEntryRead.model_validate(edited)

    return work.write(run)


@router.delete("/{entry_id}", response_model=TimeEntryRead, responses=problems(403, 404))
def delete_time_entry(entry_id: str, caller: Caller, work: Work) -> JSONResponse:
    """Mark the entry entered-in-error. It is kept, audited, and the FHIR server is told."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> TimeEntryRead:
        check_may_change_entry(caller, visible_entry(store, caller, entry_id))
        deleted = timetracking.delete_entry(store=store, entry_id=entry_id, actor=caller.id)
        return TimeEntryRead.model_validate(deleted)

    return work.write(run)


@router.get("/{entry_id}/audit", responses=problems(403, 404))
def get_audit_trail(entry_id: str, caller: Caller, work: Work) -> list[AuditEventRead]:
    """Every change of the entry, oldest first: who, when, and the entry before and after."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> list[AuditEventRead]:
        visible_entry(store, caller, entry_id)
        events = timetracking.audit_trail(store=store, entry_id=entry_id)
        return [AuditEventRead.model_validate(event) for event in events]

    return work.read(run)
