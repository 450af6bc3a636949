"""Timers: one running per staff member. Starting a second is refused (409) and names the
running one; stop it (or delete its entry) first."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from fhirbridge.api.access import CLINICAL, acting_staff, require_role, visible_patient
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.problems import problems
from fhirbridge.api.schemas.time_entries import TimeEntryRead, TimerCreate, TimerStop
from fhirbridge.persistence import Store
from fhirbridge.services import timetracking
from fhirbridge.services.errors import NotFound

router = APIRouter(prefix="/timers", tags=["timers"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TimeEntryRead,
    responses=problems(403, 404, 409, 422),
)
def start_timer(body: TimerCreate, caller: Caller, work: Work) -> JSONResponse:
    """Start a timer now: an in-progress time entry for the patient and program."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> TimeEntryRead:
        visible_patient(store, caller, body.patient_id)
        start = timetracking.TimerStart(
            **body.model_dump(exclude={"staff_id"}),
            staff_id=acting_staff(store, caller, body.staff_id),
        )
        entry = timetracking.start_timer(
            store=store, start=start, actor=caller.id, now=work.now(), tz=work.tz
        )
        return TimeEntryRead.model_validate(entry)

    return work.write(run, status_code=status.HTTP_201_CREATED)


@router.get("/{staff_id}", responses=problems(403, 404))
def get_running_timer(staff_id: str, caller: Caller, work: Work) -> TimeEntryRead:
    """The staff member's running timer, or 404 when none runs."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> TimeEntryRead:
        entry = timetracking.running_timer(
            store=store, staff_id=acting_staff(store, caller, staff_id)
        )
        if entry is None:
            raise NotFound("running timer", staff_id)
        visible_patient(store, caller, entry.patient_id)
        return TimeEntryRead.model_validate(entry)

    return work.read(run)


@router.post(
    "/{staff_id}/stop", response_model=TimeEntryRead, responses=problems(403, 404, 409, 422)
)
def stop_timer(
    staff_id: str, caller: Caller, work: Work, body: TimerStop | None = None
) -> JSONResponse:
    """Stop the running timer now; the entry is checked like a manual one (a timer stopped in
    its first minute is refused as zero-length and keeps running)."""
    require_role(caller, CLINICAL)

    stop = body or TimerStop()

    def run(store: Store) -> TimeEntryRead:
        staff = acting_staff(store, caller, staff_id)
        running = timetracking.running_timer(store=store, staff_id=staff)
        if running is None:
            raise NotFound("running timer", staff_id)
        visible_patient(store, caller, running.patient_id)
        entry = timetracking.stop_timer(
            store=store,
            staff_id=staff,
            actor=caller.id,
            now=work.now(),
            tz=work.tz,
            notes=stop.notes,
            interactive=stop.interactive,
        )
        return TimeEntryRead.model_validate(entry)

    return work.write(run)
