"""What every page of the web app shares: the templates, the unit of work of a page request,
the header (who is signed in, their running timer), and the error pages.

Pages reach the data exactly as the REST API does: through a ``RequestWork`` for the signed-in
principal, the services, and the rules of ``fhirbridge.api.access``. Writes call the REST
routes' own functions, so a form is refused for the same reasons, with the same field errors,
as the JSON request it stands for.

A record another team owns and a record that does not exist answer the same 404 page: the
wording names no id and no kind (``PageRoute``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from fhirbridge.api.access import CLINICAL
from fhirbridge.api.auth import Principal, Role
from fhirbridge.api.deps import AppState, RequestWork
from fhirbridge.api.problems import Problem
from fhirbridge.domain import TimeEntry
from fhirbridge.persistence import RecordNotFound, Store
from fhirbridge.services import timetracking
from fhirbridge.services.errors import FieldError, NotFound, Rejected, WorkflowError
from fhirbridge.web.session import CSRF_FIELD, CSRF_HEADER, WebSession

__all__ = [
    "FormErrors",
    "PageRoute",
    "Refusal",
    "app_state",
    "form_errors",
    "page",
    "page_work",
    "templates",
]

T = TypeVar("T")
TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)


def _local(value: datetime | None, tz: ZoneInfo, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """A moment as the practice reads it (records keep UTC)."""
    return "" if value is None else value.astimezone(tz).strftime(pattern)


templates.env.filters["local"] = _local
FormErrors = dict[str, list[str]]


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.fhirbridge
    return state


def page_work(request: Request, session: WebSession) -> RequestWork:
    """The unit of work of one page request, as the signed-in principal (no idempotency key:
    a form posted twice is refused by the services' own rules, e.g. a second timer)."""
    return RequestWork(
        app_state(request),
        session.principal,
        method=request.method,
        path=request.url.path,
        idempotency_key=None,
        body=b"",
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a form was refused: the problem document's status and field errors."""

    status: int
    detail: str
    errors: FormErrors


def form_errors(errors: Iterable[FieldError]) -> FormErrors:
    found: FormErrors = {}
    for error in errors:
        found.setdefault(error.field, []).append(error.reason)
    return found


def refusal(error: Exception) -> Refusal | None:
    """The refusal a form shows for ``error``, or None when it is not a refusal of the input
    (then it propagates: a 404 page, a 403 page, or the API's own problem handling)."""
    if isinstance(error, ValidationError):
        reasons = [
            FieldError(".".join(str(p) for p in e["loc"]) or "form", e["msg"])
            for e in error.errors()
        ]
        return Refusal(422, "the form has errors", form_errors(reasons))
    if isinstance(error, NotFound):
        return None
    if isinstance(error, WorkflowError):
        status = 422 if isinstance(error, Rejected) else 409
        return Refusal(status, str(error), form_errors(error.errors))
    if isinstance(error, Problem) and error.status in (409, 422):
        return Refusal(error.status, error.detail, form_errors(error.errors))
    return None


@dataclass(frozen=True, slots=True)
class Header:
    principal: Principal
    running: TimeEntry | None
    since: datetime | None  # the running timer's start, in the practice's time zone
    clinical: bool
    reporting: bool
    admin: bool


def _header(store: Store, principal: Principal, tz: ZoneInfo) -> Header:
    running = None
    if principal.has(*CLINICAL) and principal.staff_id is not None:
        running = timetracking.running_timer(store=store, staff_id=principal.staff_id)
    started = running.start if running is not None else None
    return Header(
        principal=principal,
        running=running,
        since=started.astimezone(tz) if started is not None else None,
        clinical=principal.has(*CLINICAL),
        reporting=principal.has(Role.BILLING, Role.SUPERVISOR, Role.ADMIN),
        admin=principal.has(Role.ADMIN),
    )


def page(
    request: Request,
    session: WebSession,
    template: str,
    build: Callable[[Store], Mapping[str, Any]],
    *,
    status_code: int = 200,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """Render ``template`` with what ``build`` reads, in one read-only unit of work with the
    page header's data."""

    work = page_work(request, session)

    def run(store: Store) -> dict[str, Any]:
        return {
            **build(store),
            "header": _header(store, session.principal, work.tz),
            "practice_tz": work.tz,
        }

    context = work.read(run)
    return render(request, session, template, {**context, **(extra or {})}, status_code)


def render(
    request: Request,
    session: WebSession | None,
    template: str,
    context: Mapping[str, Any],
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(
        request,
        template,
        {
            **context,
            "csrf_field": CSRF_FIELD,
            "csrf_header": CSRF_HEADER,
            "csrf_token": session.csrf_token if session is not None else "",
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def error_page(request: Request, status_code: int) -> Response:
    title, text = _ERRORS[status_code]
    return templates.TemplateResponse(
        request,
        "error.html",
        {"title": title, "text": text, "header": None},
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


_ERRORS = {
    404: ("Not found", "There is no such page or record."),
    403: ("Not allowed", "Your role may not open this page or do this."),
}


class PageRoute(APIRoute):
    """A page route: a missing or invisible record is the 404 page, a forbidden action (or a
    form without its CSRF token) the 403 page, whatever raised it (a service, ``access``, a
    REST route function, a dependency)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except (NotFound, RecordNotFound):
                return error_page(request, 404)
            except Problem as problem:
                if problem.status in _ERRORS:
                    return error_page(request, problem.status)
                raise
            except HTTPException as error:
                # A refused CSRF token (403); the sign-in redirect (303) passes on.
                if error.status_code in _ERRORS:
                    return error_page(request, error.status_code)
                raise

        return page_handler
