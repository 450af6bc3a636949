"""Month-end billing: the report of a practice's month, and the charges it earns.

    report = monthly_report(store, month=(2026, 10), tz=tz, rules=rules)
    run = record_charges(store, report=report)
    month = patient_month(store, patient_id="p1", month=(2026, 10), tz=tz, rules=rules)

The report is judged from minutes summed in SQL (``store.month_minutes``) and lists the entries
set aside with their reason; ``patient_month`` explains one patient's month entry by entry with
the in-memory roll-up, which the billing package's equivalence test holds to the same result.

``record_charges`` is idempotent. Each charge's id is derived from patient, month and code, so
re-running a month finds the charges it made before: an unchanged charge is left alone (no
outbox entry, nothing pushed), a changed one is updated and queued for pushing as ChargeItem,
and one no longer earned is marked not-billable and queued, never deleted. Charges already
``billed`` are never rewritten; a disagreeing re-run lists them under ``held`` for a person.

Like every service, these flush and never commit: the caller's unit of work does.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Protocol
from zoneinfo import ZoneInfo

from fhirbridge.billing.aggregate import PracticeMonth, judge_practice_month, month_days
from fhirbridge.billing.programs import ProgramMonth, merge_billed
from fhirbridge.billing.report import Report, ReportLine, build_report
from fhirbridge.billing.result import BilledCode
from fhirbridge.billing.rollup import (
    COUNTING_STATUSES,
    MonthExplanation,
    entry_order_key,
    explain_month,
)
from fhirbridge.billing.rules import RuleYear
from fhirbridge.domain import ChargeStatus, Code, MonthlyCharge, TimeEntry
from fhirbridge.persistence import Store
from fhirbridge.services.apcm_billing import apcm_month
from fhirbridge.services.monitoring_billing import rpm_device_days
from fhirbridge.services.transitional_care import tcm_program

__all__ = [
    "ChargeRun",
    "PatientMonth",
    "ProgramSource",
    "charge_id",
    "charges_of",
    "monthly_report",
    "patient_month",
    "practice_month",
    "record_charges",
]

_MAX_ID = 64  # the width of id columns
# Statuses a re-run may replace with the run's status when the code is earned again.
_WITHDRAWN = frozenset({ChargeStatus.NOT_BILLABLE})
# Charges that claim nothing: a code no longer earned leaves them as they are.
_CLAIMING_NOTHING = frozenset(
    {ChargeStatus.NOT_BILLABLE, ChargeStatus.ENTERED_IN_ERROR, ChargeStatus.ABORTED}
)


@dataclass(frozen=True, slots=True)
class ChargeRun:
    """What recording a month's charges did, by charge id."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    withdrawn: tuple[str, ...] = ()  # earned before, not any more: now not-billable
    held: tuple[str, ...] = ()  # billed already, and the re-run disagrees: left for a person


@dataclass(frozen=True, slots=True)
class PatientMonth:
    """One patient's month explained: the roll-up, and the month's entries it judged."""

    explanation: MonthExplanation
    entries: tuple[TimeEntry, ...]  # oldest first
    # The lines of the programs billed outside the time roll-up (TCM, RPM, APCM), in the
    # order they are judged; their billed codes are the roll-up's ``billed_elsewhere``.
    program_lines: tuple[ReportLine, ...] = ()


class ProgramSource(Protocol):
    """A program billed outside the time roll-up: judges its month, given what the programs
    judged before it billed (for exclusions between them)."""

    def __call__(
        self,
        store: Store,
        *,
        month: tuple[int, int],
        tz: ZoneInfo,
        rules: RuleYear,
        patient_ids: Sequence[str] | None,
        billed: Mapping[str, Sequence[BilledCode]],
    ) -> ProgramMonth: ...


# In the order they are judged: a later program sees what the earlier ones billed.
PROGRAM_SOURCES: tuple[ProgramSource, ...] = (
    tcm_program,  # first: its codes (date of service = the visit) exclude APCM
    rpm_device_days,  # RPM device days: 99454 / 99445 per 30-day period, 99453 once
    apcm_month,  # after TCM and RPM: a TCM code billed this month excludes APCM
)


def program_months(
    store: Store,
    *,
    month: tuple[int, int],
    tz: ZoneInfo,
    rules: RuleYear,
    patient_ids: Sequence[str] | None = None,
    sources: Sequence[ProgramSource] = PROGRAM_SOURCES,
) -> list[ProgramMonth]:
    judged: list[ProgramMonth] = []
    for source in sources:
        billed = merge_billed(judged)
        judged.append(
            source(store, month=month, tz=tz, rules=rules, patient_ids=patient_ids, billed=billed)
        )
    return judged


def practice_month(
    store: Store,
    *,
    month: tuple[int, int],
    tz: ZoneInfo,
    rules: RuleYear,
    patient_ids: Sequence[str] | None = None,
    billed_elsewhere: Mapping[str, Sequence[BilledCode]] | None = None,
) -> PracticeMonth:
    """Every patient's (or ``patient_ids``') month, from minutes summed in SQL.

    ``billed_elsewhere``: codes the programs outside the roll-up bill, by patient id."""
    minutes = store.month_minutes
    groups = minutes.groups(
        month=month, tz=tz, counting=COUNTING_STATUSES, patient_ids=patient_ids, details=True
    )
    enrollments, consents = minutes.enrollments(
        month=month, patient_ids=patient_ids, named={g.enrollment_id for g in groups}
    )
    return judge_practice_month(
        rules=rules,
        month=month,
        tz=tz,
        groups=groups,
        enrollments=enrollments,
        consents=consents,
        billed_elsewhere=billed_elsewhere,
    )


def monthly_report(
    store: Store,
    *,
    month: tuple[int, int],
    tz: ZoneInfo,
    rules: RuleYear,
    patient_ids: Sequence[str] | None = None,
    sources: Sequence[ProgramSource] = PROGRAM_SOURCES,
) -> Report:
    """The month-end report of every patient (or of ``patient_ids``) for ``month``: the
    programs billed outside the roll-up first, then the time roll-up, which their codes may
    exclude."""
    programs = program_months(
        store, month=month, tz=tz, rules=rules, patient_ids=patient_ids, sources=sources
    )
    practice = practice_month(
        store,
        month=month,
        tz=tz,
        rules=rules,
        patient_ids=patient_ids,
        billed_elsewhere=merge_billed(programs),
    )
    extra = [line for program in programs for line in program.lines]
    return build_report(practice, rules=rules, time_zone=tz.key, extra_lines=extra)


def patient_month(
    store: Store,
    *,
    patient_id: str,
    month: tuple[int, int],
    tz: ZoneInfo,
    rules: RuleYear,
    sources: Sequence[ProgramSource] = PROGRAM_SOURCES,
) -> PatientMonth:
    """One patient's month, entry by entry: what counts, what is set aside and why, and the
    codes earned or not; with the lines of the programs billed outside the roll-up, judged
    for this patient alone as the month-end report judges them, whose billed codes the
    roll-up sees (an APCM month shows CCM excluded, as the report does)."""
    programs = program_months(
        store, month=month, tz=tz, rules=rules, patient_ids=[patient_id], sources=sources
    )
    billed = merge_billed(programs).get(patient_id, ())
    entries = store.month_minutes.of_patient(patient_id, month=month, tz=tz)
    explanation = explain_month(
        rules=rules,
        month=month,
        patient_id=patient_id,
        enrollments=store.enrollments.list_for_patient(patient_id),
        consents=store.consents.list_for_patient(patient_id),
        entries=entries,
        tz=tz,
        billed_elsewhere=billed,
    )
    ordered = sorted(entries, key=lambda e: entry_order_key(e, tz))
    lines = tuple(
        line for program in programs for line in program.lines if line.patient_id == patient_id
    )
    return PatientMonth(explanation, tuple(ordered), lines)


def charge_id(patient_id: str, month: tuple[int, int], code: str) -> str:
    """``<patient>-<yyyy-mm>-<code>``; a stable UUID when that would not fit an id column."""
    readable = f"{patient_id}-{month[0]:04d}-{month[1]:02d}-{code}"
    if len(readable) <= _MAX_ID:
        return readable
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fhirbridge:charge:{readable}"))


def _billing_code(code: str) -> Code:
    # HCPCS level II codes start with a letter (G0556); CPT codes with a digit (99490, 0001F).
    return Code("hcpcs" if code[:1].isalpha() else "cpt", code)


def charges_of(
    report: Report, *, status: ChargeStatus = ChargeStatus.BILLABLE
) -> list[MonthlyCharge]:
    """One charge per earned code of the report."""
    first, last = month_days(report.month)
    return [_charge(line, report.month, first, last, status) for line in report.earned]


def _charge(
    line: ReportLine, month: tuple[int, int], first: date, last: date, status: ChargeStatus
) -> MonthlyCharge:
    return MonthlyCharge(
        id=charge_id(line.patient_id, month, line.code),
        patient_id=line.patient_id,
        code=_billing_code(line.code),
        units=line.units,
        month_start=first,
        month_end=last,
        status=status,
        practitioner_id=line.practitioner_id,
        time_entry_ids=list(line.entry_ids),
    )


def record_charges(
    store: Store,
    *,
    report: Report,
    status: ChargeStatus = ChargeStatus.BILLABLE,
    patient_ids: Sequence[str] | None = None,
) -> ChargeRun:
    """Create or update the month's charges from ``report`` and queue the changed ones.

    ``patient_ids`` limits which stored charges may be withdrawn; pass the same list the
    report was made for.
    """
    first, _ = month_days(report.month)
    stored = {c.id: c for c in store.charges.list_for_month(first, patient_ids=patient_ids)}
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    held: list[str] = []
    wanted = charges_of(report, status=status)
    for charge in wanted:
        before = stored.get(charge.id)
        if before is None:
            store.save(charge)
            created.append(charge.id)
            continue
        # A status a person set (planned, billed...) stands; only a withdrawn charge comes back.
        kept = replace(charge, status=status if before.status in _WITHDRAWN else before.status)
        if kept == before:
            unchanged.append(charge.id)
        elif before.status == ChargeStatus.BILLED:
            held.append(charge.id)
        else:
            store.save(kept)
            updated.append(charge.id)
    withdrawn: list[str] = []
    earned_ids = {c.id for c in wanted}
    for charge_id_, before in sorted(stored.items()):
        if charge_id_ in earned_ids or before.status in _CLAIMING_NOTHING:
            continue
        if before.status == ChargeStatus.BILLED:
            held.append(charge_id_)
            continue
        store.save(replace(before, status=ChargeStatus.NOT_BILLABLE))
        withdrawn.append(charge_id_)
    return ChargeRun(
        created=tuple(created),
        updated=tuple(updated),
        unchanged=tuple(unchanged),
        withdrawn=tuple(withdrawn),
        held=tuple(held),
    )
