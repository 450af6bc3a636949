"""Month-end billing: the report of a practice's month, and the charges it earns.

    report = monthly_report(session=session, month=(2026, 10), tz=tz, rules=rules)
    run = record_charges(session=session, report=report)

``record_charges`` is idempotent. Each charge's id is derived from patient, month and code, so
re-running a month finds the charges it made before: an unchanged charge is left alone (no
outbox entry, nothing pushed), a changed one is updated and queued for pushing as ChargeItem,
and one no longer earned is marked not-billable and queued, never deleted. Charges already
``billed`` are never rewritten; a disagreeing re-run lists them under ``held`` for a person.

Like every service, these flush and never commit: the caller's unit of work does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fhirbridge.billing.aggregate import aggregate_month, month_days
from fhirbridge.billing.report import Report, ReportLine, build_report
from fhirbridge.billing.rules import RuleYear
from fhirbridge.domain import ChargeStatus, Code, MonthlyCharge
from fhirbridge.persistence import Store

__all__ = [
    "ChargeRun",
    "charge_id",
    "charges_of",
    "monthly_report",
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


def monthly_report(
    *,
    session: Session,
    month: tuple[int, int],
    tz: ZoneInfo,
    rules: RuleYear,
    patient_ids: Sequence[str] | None = None,
) -> Report:
    """The month-end report of every patient (or of ``patient_ids``) for ``month``."""
    practice = aggregate_month(session, rules=rules, month=month, tz=tz, patient_ids=patient_ids)
    return build_report(practice, rules=rules, time_zone=tz.key)


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
    *,
    session: Session,
    report: Report,
    status: ChargeStatus = ChargeStatus.BILLABLE,
    patient_ids: Sequence[str] | None = None,
) -> ChargeRun:
    """Create or update the month's charges from ``report`` and queue the changed ones.

    ``patient_ids`` limits which stored charges may be withdrawn; pass the same list the
    report was made for.
    """
    store = Store(session)
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
