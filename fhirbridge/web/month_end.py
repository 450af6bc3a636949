"""Month end for billing users: the billing report of a team's month, with the explanation of
each code earned or not per patient, the time entries set aside and why, and the CSV download.
The same report, rules and team rules as ``GET /reports/billing``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from fhirbridge.api.access import REPORTING, require_role
from fhirbridge.api.problems import Problem
from fhirbridge.api.routes import reports as report_routes
from fhirbridge.api.routes.reports import report_team
from fhirbridge.billing.report import ReportLine
from fhirbridge.persistence import Store
from fhirbridge.services.billing import monthly_report
from fhirbridge.services.errors import WorkflowError
from fhirbridge.web.pages import PageRoute, Refusal, page, page_work, refusal
from fhirbridge.web.session import SignedIn

__all__ = ["router"]

router = APIRouter(prefix="/app", route_class=PageRoute, include_in_schema=False)

MonthQuery = Annotated[str | None, Query(max_length=7)]
TeamQuery = Annotated[str | None, Query(max_length=64)]


@dataclass(frozen=True, slots=True)
class PatientLines:
    patient_id: str
    lines: tuple[ReportLine, ...]


def _month_text(request: Request, session: SignedIn, month: str | None) -> str:
    if month:
        return month
    work = page_work(request, session)
    return work.now().astimezone(work.tz).strftime("%Y-%m")


@router.get("/month-end")
def month_end_page(
    request: Request, session: SignedIn, month: MonthQuery = None, team: TeamQuery = None
) -> Response:
    require_role(session.principal, REPORTING)
    chosen_month = _month_text(request, session, month)
    work = page_work(request, session)
    found: dict[str, Any] = {}
    refused: Refusal | None = None
    try:
        chosen = report_team(session.principal, team or None)
        year, number = report_routes.billing_month(chosen_month)
        rules = report_routes.rules_of(year)
        report = work.read(
            lambda store: monthly_report(
                store,
                month=(year, number),
                tz=work.tz,
                rules=rules,
                patient_ids=[p.id for p in store.patients.list_for_team(chosen)],
            )
        )
        by_patient: dict[str, list[ReportLine]] = {}
        for line in report.lines:
            if not line.set_aside:
                by_patient.setdefault(line.patient_id, []).append(line)
        found = {
            "report": report,
            "team": chosen,
            "patients": [PatientLines(p, tuple(lines)) for p, lines in by_patient.items()],
            "set_aside": [line for line in report.lines if line.set_aside],
        }
    except (WorkflowError, Problem) as error:
        refused = refusal(error)
        if refused is None:
            raise

    def build(store: Store) -> Mapping[str, Any]:
        return found

    return page(
        request,
        session,
        "month_end.html",
        build,
        status_code=refused.status if refused else 200,
        extra={
            "month": chosen_month,
            "team_asked": team or "",
            "errors": refused.errors if refused else {},
            "refusal": refused,
        },
    )


@router.get("/month-end.csv")
def month_end_csv(
    request: Request, session: SignedIn, month: MonthQuery = None, team: TeamQuery = None
) -> Response:
    """The report as CSV, as ``GET /reports/billing?format=csv`` answers it, to save."""
    chosen_month = _month_text(request, session, month)
    work = page_work(request, session)
    answer = report_routes.billing_report(
        session.principal, work, chosen_month, team or None, format="csv"
    )
    chosen = report_team(session.principal, team or None)
    answer.headers["Content-Disposition"] = (
        f'attachment; filename="billing-{chosen}-{chosen_month}.csv"'
    )
    return answer
