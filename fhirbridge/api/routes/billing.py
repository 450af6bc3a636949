"""One patient's billing month explained entry by entry.

``GET /patients/{patient_id}/billing?month=YYYY-MM`` answers, for the practice's time zone and
the month's rule year: each time entry of the month, counted (with the minutes it adds inside
the month) or set aside (with the reason); the counted minutes per program; and each code
earned (units, practitioner, entries) or not earned (with the reason). It is the in-memory
roll-up of the same inputs the month-end report judges in SQL, so the two agree. The programs
billed outside the roll-up (TCM, RPM device days, APCM) are judged for this patient alone and
listed under ``program_lines``; the codes they bill are the roll-up's ``billed_elsewhere``,
so an APCM month shows CCM excluded here as in the report.

Readers: the reporting roles (billing, supervisor, admin) and the clinical ones, for patients
of a team they see; another team's patient answers 404 like a missing one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from enum import StrEnum

from fastapi import APIRouter
from pydantic import Field

from fhirbridge.api.access import CLINICAL, REPORTING, require_role, visible_patient
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.routes.reports import Month, billing_month, rules_of
from fhirbridge.api.schemas._base import Outgoing
from fhirbridge.api.schemas.problems import problems
from fhirbridge.domain import Program, StaffRole
from fhirbridge.persistence import Store
from fhirbridge.services.billing import PatientMonth, patient_month

router = APIRouter(prefix="/patients", tags=["billing"])

READERS = REPORTING | CLINICAL


class EntryOutcome(StrEnum):
    COUNTED = "counted"
    SET_ASIDE = "set-aside"


class BilledEntryRead(Outgoing):
    """A time entry of the month and what billing made of it."""

    entry_id: str
    start: datetime | None
    program: Program | None
    staff_id: str | None
    staff_role: StaffRole | None
    outcome: EntryOutcome
    minutes: int  # counted inside the month; 0 when set aside
    reason: str | None  # why it is set aside
    codes: list[str]  # earned codes whose minutes include it


class ProgramMinutesRead(Outgoing):
    program: Program
    minutes: int
    entries: int


class EarnedCodeRead(Outgoing):
    code: str
    units: int
    practitioner_id: str
    minutes: int
    entry_ids: list[str]
    note: str | None


class NotEarnedCodeRead(Outgoing):
    code: str
    reason: str


class ProgramLineRead(Outgoing):
    """A code of a program billed outside the time roll-up (TCM, RPM, APCM), earned or not,
    as the month-end report lists it."""

    program: Program | None
    code: str
    earned: bool
    units: int
    practitioner_id: str | None
    explanation: str | None


class PatientBillingRead(Outgoing):
    patient_id: str
    month: str
    time_zone: str
    rule_year: int
    entries: list[BilledEntryRead]
    programs: list[ProgramMinutesRead]
    earned: list[EarnedCodeRead]
    not_earned: list[NotEarnedCodeRead]
    # The programs outside the roll-up, in the order they are judged; the codes they bill
    # exclude what they exclude in the roll-up above (APCM excludes CCM), as in the report.
    program_lines: list[ProgramLineRead] = Field(default_factory=list)


@router.get("/{patient_id}/billing", responses=problems(403, 404, 422))
def patient_billing(
    caller: Caller, work: Work, patient_id: str, month: Month
) -> PatientBillingRead:
    """One patient's month, entry by entry: counted or set aside (with the reason), minutes per
    program, and the codes earned or why not."""
    require_role(caller, READERS)
    wanted = billing_month(month)

    def run(store: Store) -> PatientMonth:
        visible_patient(store, caller, patient_id)
        rules = rules_of(wanted[0])
        return patient_month(store, patient_id=patient_id, month=wanted, tz=work.tz, rules=rules)

    return _read(work.read(run), month, work.tz.key)


def _read(explained: PatientMonth, month: str, time_zone: str) -> PatientBillingRead:
    result = explained.explanation.result
    counted = {c.entry_id: c for c in explained.explanation.counted}
    aside = {s.entry_id: s.reason for s in result.set_aside}
    codes_of: dict[str, list[str]] = defaultdict(list)
    for earned in result.earned:
        for entry_id in earned.entry_ids:
            codes_of[entry_id].append(earned.code)
    entries = []
    for entry in explained.entries:
        if entry.id not in counted and entry.id not in aside:
            continue  # no minutes in this month: nothing to explain
        minutes = counted[entry.id].minutes if entry.id in counted else 0
        entries.append(
            BilledEntryRead(
                entry_id=entry.id,
                start=entry.start,
                program=entry.program,
                staff_id=entry.staff_id,
                staff_role=entry.staff_role,
                outcome=EntryOutcome.COUNTED if entry.id in counted else EntryOutcome.SET_ASIDE,
                minutes=minutes,
                reason=aside.get(entry.id),
                codes=codes_of.get(entry.id, []),
            )
        )
    minutes_of: dict[Program, list[int]] = defaultdict(list)
    for item in explained.explanation.counted:
        minutes_of[item.program].append(item.minutes)
    return PatientBillingRead(
        patient_id=result.patient_id,
        month=month,
        time_zone=time_zone,
        rule_year=result.rule_year,
        entries=entries,
        programs=[
            ProgramMinutesRead(program=program, minutes=sum(values), entries=len(values))
            for program, values in sorted(minutes_of.items(), key=lambda item: item[0].value)
        ],
        earned=[
            EarnedCodeRead(
                code=e.code,
                units=e.units,
                practitioner_id=e.practitioner_id,
                minutes=e.minutes,
                entry_ids=list(e.entry_ids),
                note=e.note,
            )
            for e in result.earned
        ],
        not_earned=[NotEarnedCodeRead(code=n.code, reason=n.reason) for n in result.not_earned],
        program_lines=[
            ProgramLineRead(
                program=line.program,
                code=line.code,
                earned=line.earned,
                units=line.units,
                practitioner_id=line.practitioner_id,
                explanation=line.explanation,
            )
            for line in explained.program_lines
        ],
    )
