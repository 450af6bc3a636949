"""The timer and the time-entry forms.

The timer is server state (one running per staff member, ``services.timetracking``), so it
survives a reload and shows in a second tab: every page's header shows it with a stop button.
Starting, stopping, recording and editing call the REST routes' own functions; a refusal (time
already recorded, before consent, a second timer...) is shown next to the field the problem
document names, with the form as it was sent.

Times in the forms are the practice's local time (``practice_timezone``), to the minute.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from fhirbridge.api.access import CLINICAL, require_role, visible_patient
from fhirbridge.api.problems import Problem
from fhirbridge.api.routes import time_entries as time_entry_routes
from fhirbridge.api.routes import timers as timer_routes
from fhirbridge.api.routes.time_entries import visible_entry
from fhirbridge.api.schemas.time_entries import TimeEntryCreate, TimeEntryUpdate, TimerCreate
from fhirbridge.domain import TimeEntry
from fhirbridge.persistence import Store
from fhirbridge.services import timetracking
from fhirbridge.services.errors import FieldError, NotFound, WorkflowError
from fhirbridge.web.pages import PageRoute, Refusal, page, page_work, refusal
from fhirbridge.web.patients import entry_form_choices, patient_context
from fhirbridge.web.session import CSRF_FIELD, CheckedSession, SignedIn

__all__ = ["router"]

router = APIRouter(prefix="/app", route_class=PageRoute, include_in_schema=False)

_LOCAL_MINUTE = "%Y-%m-%dT%H:%M"
_TIMER_FIELDS = ("patient_id", "program", "activity", "mode")
_ENTRY_FIELDS = ("program", "activity", "mode", "start", "end", "minutes", "interactive", "notes")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(tz).strftime(_LOCAL_MINUTE)


def _instant(value: str | None, tz: ZoneInfo, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(name, "not a date and time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


class _Invalid(Exception):
    """A form value that cannot even be read (reported next to its field, as a 422 would)."""

    def __init__(self, name: str, reason: str) -> None:
        self.error = FieldError(name, reason)
        super().__init__(reason)


def _refused(error: Exception) -> Refusal | None:
    if isinstance(error, _Invalid):
        return Refusal(422, "the form has errors", {error.error.field: [error.error.reason]})
    return refusal(error)


def _optional_int(value: str | None, name: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise _Invalid(name, "not a whole number") from None


def _optional_bool(value: str | None) -> bool | None:
    return None if not value else value == "true"


# -- the timer ---------------------------------------------------------------------------


@router.post("/timer/start")
async def start_timer(request: Request, session: CheckedSession) -> Response:
    """Start the caller's timer for the patient; a refusal shows on the patient page."""
    sent = await _form(request)
    patient_id = sent.get("patient_id", "")
    work = page_work(request, session)
    try:
        body = TimerCreate(**{k: sent[k] for k in _TIMER_FIELDS if sent.get(k)})
        timer_routes.start_timer(body, session.principal, work)
    except (ValidationError, WorkflowError, Problem) as error:
        refused = _refused(error)
        if refused is None:
            raise
        return _patient_page(request, session, patient_id, refused, {"timer": sent})
    return RedirectResponse(f"/app/patients/{patient_id}", status_code=303)


def _patient_page(
    request: Request,
    session: SignedIn,
    patient_id: str,
    refused: Refusal,
    forms: Mapping[str, Mapping[str, str]],
) -> Response:
    return page(
        request,
        session,
        "patient.html",
        lambda store: patient_context(store, session, patient_id),
        status_code=refused.status,
        extra={"errors": refused.errors, "refusal": refused, "forms": forms},
    )


@router.post("/timer/stop")
async def stop_timer(request: Request, session: CheckedSession) -> Response:
    """Stop the caller's running timer and open its entry's form, filled in, to complete."""
    caller = session.principal
    require_role(caller, CLINICAL)
    if caller.staff_id is None:
        raise NotFound("running timer", "")
    staff_id = caller.staff_id
    work = page_work(request, session)
    running = work.read(lambda store: timetracking.running_timer(store=store, staff_id=staff_id))
    if running is None or running.patient_id is None:
        return RedirectResponse("/app", status_code=303)
    try:
        answer = timer_routes.stop_timer(staff_id, caller, work, None)
    except (WorkflowError, Problem) as error:
        refused = _refused(error)
        if refused is None:
            raise
        return _patient_page(request, session, running.patient_id, refused, {})
    stopped = json.loads(bytes(answer.body))
    return RedirectResponse(f"/app/time-entries/{stopped['id']}?stopped=1", status_code=303)


# -- editing an entry (the form a stopped timer opens) -------------------------------------


def _entry_values(entry: TimeEntry, tz: ZoneInfo) -> dict[str, str]:
    return {
        "program": entry.program.value if entry.program else "",
        "activity": entry.activity.value if entry.activity else "",
        "mode": entry.mode.value if entry.mode else "",
        "start": _local(entry.start, tz),
        "end": _local(entry.end, tz),
        "minutes": "" if entry.minutes is None else str(entry.minutes),
        "interactive": "" if entry.interactive is None else str(entry.interactive).lower(),
        "notes": entry.notes or "",
    }


def _entry_page(
    request: Request,
    session: SignedIn,
    entry_id: str,
    values: Mapping[str, str] | None,
    refused: Refusal | None,
    stopped: bool,
) -> Response:
    work = page_work(request, session)

    def build(store: Store) -> Mapping[str, Any]:
        entry = visible_entry(store, session.principal, entry_id)
        return {
            "entry": entry,
            "values": values if values is not None else _entry_values(entry, work.tz),
            "trail": timetracking.audit_trail(store=store, entry_id=entry.id),
            "choices": entry_form_choices(),
        }

    return page(
        request,
        session,
        "time_entry.html",
        build,
        status_code=refused.status if refused else 200,
        extra={
            "errors": refused.errors if refused else {},
            "refusal": refused,
            "stopped": stopped,
            "tz": work.tz.key,
        },
    )


@router.get("/time-entries/{entry_id}")
def entry_page(
    entry_id: str, request: Request, session: SignedIn, stopped: bool = False
) -> Response:
    require_role(session.principal, CLINICAL)
    return _entry_page(request, session, entry_id, None, None, stopped)


@router.post("/time-entries/{entry_id}")
async def edit_entry(entry_id: str, request: Request, session: CheckedSession) -> Response:
    """Save the entry's form through ``PATCH /time-entries/{id}``."""
    sent = await _form(request)
    work = page_work(request, session)
    try:
        body = TimeEntryUpdate(
            activity=sent.get("activity") or None,
            mode=sent.get("mode") or None,
            start=_instant(sent.get("start"), work.tz, "start"),
            end=_instant(sent.get("end"), work.tz, "end"),
            minutes=_optional_int(sent.get("minutes"), "minutes"),
            interactive=_optional_bool(sent.get("interactive")),
            notes=sent.get("notes") or None,
        )
        time_entry_routes.update_time_entry(entry_id, body, session.principal, work)
    except (_Invalid, ValidationError, WorkflowError, Problem) as error:
        refused = _refused(error)
        if refused is None:
            raise
        return _entry_page(request, session, entry_id, sent, refused, stopped=False)
    return RedirectResponse(f"/app/time-entries/{entry_id}", status_code=303)


# -- recording an entry by hand ----------------------------------------------------------


def _new_entry_page(
    request: Request,
    session: SignedIn,
    patient_id: str,
    values: Mapping[str, str],
    refused: Refusal | None,
) -> Response:
    def build(store: Store) -> Mapping[str, Any]:
        patient = visible_patient(store, session.principal, patient_id)
        return {"patient": patient, "choices": entry_form_choices()}

    return page(
        request,
        session,
        "time_entry_new.html",
        build,
        status_code=refused.status if refused else 200,
        extra={
            "values": values,
            "errors": refused.errors if refused else {},
            "refusal": refused,
            "tz": page_work(request, session).tz.key,
        },
    )


@router.get("/patients/{patient_id}/time-entries/new")
def new_entry_page(patient_id: str, request: Request, session: SignedIn) -> Response:
    require_role(session.principal, CLINICAL)
    work = page_work(request, session)
    now = _local(work.now(), work.tz)
    values = {"start": now, "end": now, "activity": "check-in-call", "mode": "virtual"}
    return _new_entry_page(request, session, patient_id, values, None)


@router.post("/patients/{patient_id}/time-entries")
async def record_entry(patient_id: str, request: Request, session: CheckedSession) -> Response:
    """Record a finished entry through ``POST /time-entries``."""
    sent = await _form(request)
    work = page_work(request, session)
    try:
        body = TimeEntryCreate(
            patient_id=patient_id,
            program=sent.get("program") or None,
            activity=sent.get("activity") or None,
            mode=sent.get("mode") or None,
            start=_instant(sent.get("start"), work.tz, "start"),
            end=_instant(sent.get("end"), work.tz, "end"),
            minutes=_optional_int(sent.get("minutes"), "minutes"),
            interactive=_optional_bool(sent.get("interactive")),
            notes=sent.get("notes") or None,
        )
        answer = time_entry_routes.create_time_entry(body, session.principal, work)
    except (_Invalid, ValidationError, WorkflowError, Problem) as error:
        refused = _refused(error)
        if refused is None:
            raise
        return _new_entry_page(request, session, patient_id, sent, refused)
    created = json.loads(bytes(answer.body))
    return RedirectResponse(f"/app/time-entries/{created['id']}", status_code=303)
