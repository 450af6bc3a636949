"""Reports for billing: countable minutes, and the month-end billing report (JSON or CSV)."""

from __future__ import annotations

import io
from collections import Counter
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from fhirbridge.api.access import REPORTING, require_role
from fhirbridge.api.auth import Principal, Role
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.problems import problems
from fhirbridge.api.schemas.time_entries import MinutesRead
from fhirbridge.billing import RuleYear, RuleYearMissing, load_rule_year
from fhirbridge.billing.period import parse_month
from fhirbridge.billing.report import Report, write_csv, write_json
from fhirbridge.billing.rollup import COUNTING_STATUSES
from fhirbridge.domain import Program
from fhirbridge.persistence import Store
from fhirbridge.services.billing import monthly_report
from fhirbridge.services.errors import FieldError, Rejected

router = APIRouter(prefix="/reports", tags=["reports"])


def report_team(caller: Principal, team: str | None) -> str:
    require_role(caller, REPORTING)
    chosen = team if caller.team is None or caller.has(Role.ADMIN) else caller.team
    if chosen is None or (team is not None and team != chosen):
        raise Rejected("report", [FieldError("team", "name a team you may see")])
    return chosen


Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-10"])]


def billing_month(text: str) -> tuple[int, int]:
    """The ``month`` query parameter as (year, month); 422 naming ``month`` when out of range."""
    try:
        return parse_month(text)
    except ValueError as error:
        raise Rejected("month", [FieldError("month", str(error))]) from None


def rules_of(year: int) -> RuleYear:
    """The billing rules of ``year``; 422 naming the missing file and how to create it."""
    try:
        return load_rule_year(year)
    except RuleYearMissing as missing:
        raise Rejected("month", [FieldError("month", missing.reason)]) from None


@router.get("/minutes", responses=problems(403, 422))
def monthly_minutes(
    caller: Caller, work: Work, month: Month, team: str | None = None
) -> list[MinutesRead]:
    """Countable minutes per patient and program in ``month`` (practice time zone), for one
    team: the caller's own, or any named one for admins and team-less billing credentials.
    Aggregated in SQL, like the billing roll-up it feeds."""
    chosen = report_team(caller, team)
    wanted = billing_month(month)

    def run(store: Store) -> list[MinutesRead]:
        patients = [p.id for p in store.patients.list_for_team(chosen)]
        groups = store.month_minutes.groups(
            month=wanted, tz=work.tz, counting=COUNTING_STATUSES, patient_ids=patients
        )
        minutes: Counter[tuple[str, Program]] = Counter()
        entries: Counter[tuple[str, Program]] = Counter()
        for group in groups:
            if group.countable and group.program is not None:
                key = (group.patient_id, group.program)
                minutes[key] += group.minutes
                entries[key] += len(group.entries)
        return [
            MinutesRead(patient_id=p, program=program, minutes=minutes[(p, program)], entries=n)
            for (p, program), n in sorted(entries.items())
        ]

    return work.read(run)


@router.get(
    "/billing",
    responses={
        **problems(403, 422),
        200: {"content": {"application/json": {}, "text/csv": {}}},
    },
)
def billing_report(
    caller: Caller,
    work: Work,
    month: Month,
    team: str | None = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """The month-end billing report of one team: per patient and program, the codes and units
    earned (with the time entries counted) and the codes not earned, with the reason; then the
    time entries set aside (counting for nothing), each with the reason."""
    chosen = report_team(caller, team)
    year, number = billing_month(month)
    rules = rules_of(year)

    def run(store: Store) -> Report:
        patients = [p.id for p in store.patients.list_for_team(chosen)]
        return monthly_report(
            store,
            month=(year, number),
            tz=work.tz,
            rules=rules,
            patient_ids=patients,
        )

    report = work.read(run)
    out = io.StringIO()
    if format == "csv":
        write_csv(report, out)
        return Response(out.getvalue(), media_type="text/csv")
    write_json(report, out)
    return Response(out.getvalue(), media_type="application/json")
