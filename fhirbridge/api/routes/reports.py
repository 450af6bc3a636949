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
from fhirbridge.billing import load_rule_year
from fhirbridge.billing.aggregate import summarize_minutes
from fhirbridge.billing.report import Report, write_csv, write_json
from fhirbridge.domain import Program
from fhirbridge.persistence import Store
from fhirbridge.services.billing import monthly_report
from fhirbridge.services.errors import FieldError, Rejected

router = APIRouter(prefix="/reports", tags=["reports"])


def _team_of(caller: Principal, team: str | None) -> str:
    require_role(caller, REPORTING)
    chosen = team if caller.team is None or caller.has(Role.ADMIN) else caller.team
    if chosen is None or (team is not None and team != chosen):
        raise Rejected("report", [FieldError("team", "name a team you may see")])
    return chosen


Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-10"])]


def _month(text: str) -> tuple[int, int]:
    year, number = (int(part) for part in text.split("-"))
    return year, number


@router.get("/minutes", responses=problems(403, 422))
def monthly_minutes(
    caller: Caller, work: Work, month: Month, team: str | None = None
) -> list[MinutesRead]:
    """Countable minutes per patient and program in ``month`` (practice time zone), for one
    team: the caller's own, or any named one for admins and team-less billing credentials.
    Aggregated in SQL, like the billing roll-up it feeds."""
    chosen = _team_of(caller, team)

    def run(store: Store) -> list[MinutesRead]:
        patients = [p.id for p in store.patients.list_for_team(chosen)]
        groups = summarize_minutes(
            store.session, month=_month(month), tz=work.tz, patient_ids=patients
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
    earned (with the time entries counted) and the codes not earned, with the reason."""
    chosen = _team_of(caller, team)
    year, number = _month(month)

    def run(store: Store) -> Report:
        patients = [p.id for p in store.patients.list_for_team(chosen)]
        return monthly_report(
            session=store.session,
            month=(year, number),
            tz=work.tz,
            rules=load_rule_year(year),
            patient_ids=patients,
        )

    report = work.read(run)
    out = io.StringIO()
    if format == "csv":
        write_csv(report, out)
        return Response(out.getvalue(), media_type="text/csv")
    write_json(report, out)
    return Response(out.getvalue(), media_type="application/json")
