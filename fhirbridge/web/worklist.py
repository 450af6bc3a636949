"""The worklist page (the start page for clinical roles) and the patients near a billing
threshold. Both read ``services.worklist`` as ``GET /worklist`` does, with its rules on whose
worklist a caller may see."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from fhirbridge.api.access import CLINICAL, require_role, sees_team
from fhirbridge.api.auth import Role
from fhirbridge.api.routes.patients import teams_of
from fhirbridge.api.routes.worklist import whose_worklist
from fhirbridge.billing.aggregate import month_days
from fhirbridge.persistence import Store
from fhirbridge.services import people
from fhirbridge.services import worklist as service
from fhirbridge.services.errors import NotFound
from fhirbridge.web.pages import PageRoute, app_state, page, page_work
from fhirbridge.web.session import SignedIn

router = APIRouter(prefix="/app", route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 50
# The whole list is read, then filtered and paged here: filters must not depend on the page.
_ALL = 100_000
KINDS = tuple(service.WorkKind)
URGENCIES = tuple(service.Urgency)


@dataclass(frozen=True, slots=True)
class Filters:
    kind: service.WorkKind | None
    urgency: service.Urgency | None
    patient: str | None

    def keep(self, item: service.WorkItem) -> bool:
        return (
            (self.kind is None or item.kind is self.kind)
            and (self.urgency is None or item.urgency is self.urgency)
            and (self.patient is None or item.patient_id == self.patient)
        )


@router.get("")
def start_page(session: SignedIn) -> Response:
    principal = session.principal
    if session.patient_context is not None and principal.has(*CLINICAL):
        return RedirectResponse(f"/app/patients/{session.patient_context}", status_code=303)
    if principal.has(*CLINICAL):
        return RedirectResponse("/app/worklist", status_code=303)
    if principal.has(Role.BILLING):
        return RedirectResponse("/app/month-end", status_code=303)
    return RedirectResponse("/app/sync", status_code=303)


def _worklist(
    request: Request, session: SignedIn, staff_id: str | None
) -> tuple[str | None, service.WorklistPolicy]:
    """Whose worklist to show (the REST route's rule), or None when a supervisor or admin
    without a staff id of their own has not chosen yet."""
    caller = session.principal
    require_role(caller, CLINICAL)
    policy = service.WorklistPolicy.from_settings(app_state(request).settings)
    if staff_id is None and caller.staff_id is None and caller.has(Role.SUPERVISOR, Role.ADMIN):
        return None, policy
    return whose_worklist(caller, staff_id), policy


def _read(
    store: Store, request: Request, session: SignedIn, chosen: str, policy: service.WorklistPolicy
) -> service.Worklist:
    work = page_work(request, session)
    member = store.worklist_rows.member(chosen)
    if member is None or not sees_team(session.principal, member.team):
        raise NotFound("care team member", chosen)
    now = work.now()
    return service.build_worklist(
        store=store,
        staff_id=chosen,
        now=now,
        tz=work.tz,
        policy=policy,
        rules=service.threshold_rules(now.astimezone(work.tz).year),
        page=1,
        page_size=_ALL,
        member=member,
    )


def _members(store: Store, session: SignedIn) -> list[Any]:
    caller = session.principal
    if not caller.has(Role.SUPERVISOR, Role.ADMIN):
        return []
    return people.list_members(store=store, teams=teams_of(caller))


@router.get("/worklist")
def worklist_page(
    request: Request,
    session: SignedIn,
    staff_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: service.WorkKind | None = None,
    urgency: service.Urgency | None = None,
    patient: Annotated[str | None, Query(max_length=64)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1)] = 1,
) -> Response:
    """Due and overdue check-ins, open tasks, referrals past their service level, billing
    thresholds and sync conflicts, most urgent and highest risk first."""
    chosen, policy = _worklist(request, session, staff_id or None)
    filters = Filters(kind, urgency, patient or None)

    def build(store: Store) -> Mapping[str, Any]:
        found = None if chosen is None else _read(store, request, session, chosen, policy)
        kept = [item for item in found.items if filters.keep(item)] if found else []
        first = (page_number - 1) * PAGE_SIZE
        return {
            "worklist": found,
            "items": kept[first : first + PAGE_SIZE],
            "total": len(kept),
            "page": page_number,
            "pages": max(1, -(-len(kept) // PAGE_SIZE)),
            "staff_id": chosen,
            "members": _members(store, session),
            "filters": filters,
            "kinds": KINDS,
            "urgencies": URGENCIES,
        }

    return page(request, session, "worklist.html", build)


@dataclass(frozen=True, slots=True)
class NearThreshold:
    item: service.WorkItem

    @property
    def percent(self) -> int:
        minutes, threshold = self.item.minutes or 0, self.item.threshold_minutes or 1
        return min(100, round(100 * minutes / threshold))


@router.get("/thresholds")
def thresholds_page(
    request: Request,
    session: SignedIn,
    staff_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Patients a few minutes short of a billing threshold this month, with the days left."""
    chosen, policy = _worklist(request, session, staff_id or None)
    work = page_work(request, session)

    def build(store: Store) -> Mapping[str, Any]:
        found = None if chosen is None else _read(store, request, session, chosen, policy)
        today = work.now().astimezone(work.tz).date()
        _, last_day = month_days((today.year, today.month))
        items = found.items if found is not None else ()
        near = [NearThreshold(i) for i in items if i.kind is service.WorkKind.BILLING_THRESHOLD]
        return {
            "near": near,
            "notes": found.notes if found is not None else (),
            "days_left": _days_left(today, last_day),
            "watch_from": policy.billing_month_end_days,
            "margin": policy.billing_threshold_margin_minutes,
            "staff_id": chosen,
            "members": _members(store, session),
        }

    return page(request, session, "thresholds.html", build)


def _days_left(today: date, last_day: date) -> int:
    """Days of the month still to work, today included."""
    return (last_day - today).days + 1
