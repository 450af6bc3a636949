"""Reports for billing: finished minutes per patient and program in a month."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from fhirbridge.api.access import REPORTING, require_role
from fhirbridge.api.auth import Role
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.problems import problems
from fhirbridge.api.schemas.time_entries import MinutesRead
from fhirbridge.domain import Program, TimeEntryStatus
from fhirbridge.persistence import Store
from fhirbridge.services.errors import FieldError, Rejected

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/minutes", responses=problems(403, 422))
def monthly_minutes(
    caller: Caller,
    work: Work,
    month: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-10"])],
    team: str | None = None,
) -> list[MinutesRead]:
    """Minutes of finished entries started in ``month`` (practice time zone), for one team:
    the caller's own, or any named one for admins and team-less billing credentials."""
    require_role(caller, REPORTING)
    chosen = team if caller.team is None or caller.has(Role.ADMIN) else caller.team
    if chosen is None or (team is not None and team != chosen):
        raise Rejected("report", [FieldError("team", "name a team you may see")])
    year, number = (int(part) for part in month.split("-"))
    since = datetime(year, number, 1, tzinfo=work.tz)
    until = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=work.tz)

    def run(store: Store) -> list[MinutesRead]:
        minutes: Counter[tuple[str, Program]] = Counter()
        entries: Counter[tuple[str, Program]] = Counter()
        for patient in store.patients.list_for_team(chosen):
            for entry in store.time_entries.list_for_patient(patient.id, since=since, until=until):
                if entry.status is not TimeEntryStatus.FINISHED or entry.program is None:
                    continue
                key = (patient.id, entry.program)
                minutes[key] += entry.duration_minutes or 0
                entries[key] += 1
        return [
            MinutesRead(patient_id=p, program=program, minutes=minutes[(p, program)], entries=n)
            for (p, program), n in sorted(entries.items())
        ]

    return work.read(run)
