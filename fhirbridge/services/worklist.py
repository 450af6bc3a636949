"""The care manager's worklist: what to do next, for which patient, most urgent first.

A care manager's caseload is the patients of their team whose active or on-hold enrollment
names them as care manager. For it the worklist holds:

- **check-in** calls due (within ``due_soon_days``) or overdue: every ``checkin_interval_days``
  after the patient's last finished time entry with activity ``check-in-call``, or every
  ``high_risk_checkin_interval_days`` for a patient with a high-risk enrollment; a patient never
  called is due from the start of their enrollment;
- open **task**s: owned by the care manager, or unowned and about a caseload patient;
- **referral**s awaiting the performer's response (tracker requested or received): past the
  service level when not accepted ``referral_sla_days`` after they were sent;
- **billing-threshold**: in the last ``billing_month_end_days`` days of the month, patients
  ``billing_threshold_margin_minutes`` or fewer short of the next time threshold of a code of
  their program (base code or add-on unit), counting the month's minutes as the billing roll-up
  does (``store.month_minutes``). The thresholds are those of the current calendar year's rule
  file; before that file exists (January 1, say) the latest earlier year's stand in, and the
  worklist says so in ``notes``;
- open **sync-conflict**s on records of caseload patients;
- RPM **device-days** out of reach, **no-readings** and **out-of-range** values of caseload
  patients in RPM (``services.monitoring_worklist``: wording, rules and thresholds).

Order: by urgency (immediate = stat/asap task; overdue; urgent = urgent task or sync conflict;
due; routine), then by the patient's risk (highest enrollment risk level first), then by due
date, kind and record id, so a page boundary never moves between two identical requests.

Everything is read with a fixed number of queries whatever the caseload size (caseload, last
check-ins, tasks, referrals, conflicts, and the month's minutes near month end; the statements
are the store's read models ``store.worklist_rows`` and ``store.month_minutes``); nothing
queries per patient.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fhirbridge.billing import DEFAULT_RULES_DIR, latest_rule_year
from fhirbridge.billing.aggregate import month_days
from fhirbridge.billing.errors import RuleFileError
from fhirbridge.billing.rollup import COUNTING_STATUSES
from fhirbridge.billing.rules import MonthPhase, RuleYear, TimedCode
from fhirbridge.config import Settings
from fhirbridge.domain import CareTeamMember, Program, RiskLevel, StaffRole, TaskPriority
from fhirbridge.persistence import EntityKind, Store
from fhirbridge.persistence.readmodels.worklist import (
    AwaitingReferral,
    CaseloadEnrollment,
    OpenConflict,
    OpenTask,
)
from fhirbridge.services.errors import NotFound
from fhirbridge.services.monitoring_worklist import (
    AlertKind,
    MonitoringPolicy,
    monitoring_alerts,
)

__all__ = [
    "Urgency",
    "WorkItem",
    "WorkKind",
    "Worklist",
    "WorklistPolicy",
    "build_worklist",
    "threshold_rules",
]

_MAX_ADD_ON_UNITS = 10  # an add-on without a stated cap: thresholds beyond this are not watched


class WorkKind(StrEnum):
    CHECK_IN = "check-in"
    TASK = "task"
    REFERRAL = "referral"
    BILLING_THRESHOLD = "billing-threshold"
    SYNC_CONFLICT = "sync-conflict"
    DEVICE_DAYS = "device-days"  # RPM: the period cannot reach the device code's days
    NO_READINGS = "no-readings"  # RPM: no device reading for some days
    OUT_OF_RANGE = "out-of-range"  # RPM: a reading outside an active goal's target


class Urgency(StrEnum):
    IMMEDIATE = "immediate"  # a stat or asap task
    OVERDUE = "overdue"
    URGENT = "urgent"  # an urgent task, a sync conflict
    DUE = "due"
    ROUTINE = "routine"


_URGENCY_RANK = {u: n for n, u in enumerate(Urgency)}
_KIND_RANK = {k: n for n, k in enumerate(WorkKind)}
_RISK_RANK = {RiskLevel.HIGH: 0, RiskLevel.MODERATE: 1, RiskLevel.LOW: 2, None: 3}


@dataclass(frozen=True, slots=True)
class WorklistPolicy:
    referral_sla_days: int = 7
    checkin_interval_days: int = 30
    high_risk_checkin_interval_days: int = 14
    due_soon_days: int = 3
    billing_threshold_margin_minutes: int = 5
    billing_month_end_days: int = 7
    no_readings_days: int = 3  # RPM: days without a reading before it is listed
    reading_range_days: int = 7  # RPM: how far back the latest reading of a measure may be

    @classmethod
    def from_settings(cls, settings: Settings) -> WorklistPolicy:
        return cls(
            referral_sla_days=settings.referral_sla_days,
            checkin_interval_days=settings.checkin_interval_days,
            high_risk_checkin_interval_days=settings.high_risk_checkin_interval_days,
            billing_threshold_margin_minutes=settings.billing_threshold_margin_minutes,
            billing_month_end_days=settings.billing_month_end_days,
        )


@dataclass(frozen=True, slots=True)
class WorkItem:
    kind: WorkKind
    urgency: Urgency
    patient_id: str | None
    risk_level: RiskLevel | None
    due_on: date | None
    summary: str  # kinds, ids, statuses and dates, plus a task's own description
    record_kind: str | None = None
    record_id: str | None = None
    priority: TaskPriority | None = None
    code: str | None = None  # billing-threshold: the code whose threshold is near
    minutes: int | None = None  # billing-threshold: minutes counted this month
    threshold_minutes: int | None = None
    days_with_readings: int | None = None  # device-days: in the running 30-day period
    period_day: int | None = None  # device-days: today's day of that period

    @property
    def overdue(self) -> bool:
        return self.urgency is Urgency.OVERDUE


@dataclass(frozen=True, slots=True)
class Worklist:
    staff_id: str
    generated_at: datetime
    page: int
    page_size: int
    total: int
    items: tuple[WorkItem, ...]
    rules_year: int | None = None  # the billing rule year the billing-threshold items use
    notes: tuple[str, ...] = ()  # what the reader should know about how the list was made


@dataclass(slots=True)
class _Patient:
    risk: RiskLevel | None = None
    first_start: date = date.max
    programs: dict[Program, date] = field(default_factory=dict)  # program -> enrollment start


def threshold_rules(year: int, *, rules_dir: Path = DEFAULT_RULES_DIR) -> RuleYear | None:
    """The billing rules the billing-threshold items of calendar year ``year`` use: that
    year's, or the latest earlier year's while ``year`` has no rule file yet; None when there
    is no usable rule file at all (the rest of the worklist does not depend on it)."""
    # The loader parses and checks a file once per process (until the file changes); what
    # is left per request is listing the folder, so a year's file added later is used at once.
    try:
        return latest_rule_year(year, rules_dir=rules_dir)
    except RuleFileError:
        return None


def build_worklist(
    *,
    store: Store,
    staff_id: str,
    now: datetime,
    tz: ZoneInfo,
    policy: WorklistPolicy,
    rules: RuleYear | None,
    page: int = 1,
    page_size: int = 50,
    member: CareTeamMember | None = None,
) -> Worklist:
    """One page of ``staff_id``'s worklist (see module doc). ``rules``: where the thresholds
    come from, usually ``threshold_rules`` of ``now``'s year; None lists no billing-threshold
    items. ``notes`` says so when they are None or another year's. ``member``: the staff
    member, when the caller already read them (to check access), so they are not read again."""
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size start at 1")
    if member is None or member.id != staff_id:
        member = store.care_team.get(staff_id)
    if member is None:
        raise NotFound("care team member", staff_id)
    rows = store.worklist_rows
    today = now.astimezone(tz).date()
    patients = _caseload(rows.caseload(staff_id))
    risk = {patient_id: p.risk for patient_id, p in patients.items()}
    items: list[WorkItem] = []
    items += _check_ins(rows.last_check_ins(staff_id), patients, today, tz, policy)
    items += _tasks(rows.open_tasks(staff_id), risk, today, policy)
    items += _referrals(rows.awaiting_referrals(staff_id), risk, now, tz, policy)
    items += _conflicts(rows.open_conflicts(staff_id), risk, tz)
    if rules is not None and patients:
        items += _near_thresholds(store, patients, today, tz, rules, policy)
    items += _monitoring(store, patients, today, rules, policy)
    items.sort(key=_order)
    first = (page - 1) * page_size
    return Worklist(
        staff_id=staff_id,
        generated_at=now,
        page=page,
        page_size=page_size,
        total=len(items),
        items=tuple(items[first : first + page_size]),
        rules_year=rules.rule_year if rules is not None else None,
        notes=_rule_notes(today.year, rules),
    )


def _rule_notes(year: int, rules: RuleYear | None) -> tuple[str, ...]:
    if rules is None:
        return (f"no usable billing rules for CY{year}: billing-threshold items are not listed",)
    if rules.rule_year != year:
        return (
            f"no billing rules for CY{year} yet: billing-threshold items use "
            f"CY{rules.rule_year}'s thresholds",
        )
    return ()


def _order(item: WorkItem) -> tuple[Any, ...]:
    return (
        _URGENCY_RANK[item.urgency],
        _RISK_RANK[item.risk_level],
        item.due_on or date.max,
        _KIND_RANK[item.kind],
        item.patient_id or "",
        item.record_id or "",
    )


# -- caseload ----------------------------------------------------------------------------


def _caseload(enrollments: Iterable[CaseloadEnrollment]) -> dict[str, _Patient]:
    """Per patient: the highest risk level and the start of each program's enrollment."""
    patients: dict[str, _Patient] = defaultdict(_Patient)
    for enrollment in enrollments:
        patient = patients[enrollment.patient_id]
        if _RISK_RANK[enrollment.risk_level] < _RISK_RANK[patient.risk]:
            patient.risk = enrollment.risk_level
        patient.first_start = min(patient.first_start, enrollment.start_on)
        patient.programs[enrollment.program] = enrollment.start_on
    return dict(patients)


# -- check-ins ---------------------------------------------------------------------------


def _check_ins(
    last_call: Mapping[str, datetime],
    patients: Mapping[str, _Patient],
    today: date,
    tz: ZoneInfo,
    policy: WorklistPolicy,
) -> Iterator[WorkItem]:
    horizon = today + timedelta(days=policy.due_soon_days)
    for patient_id, patient in patients.items():
        high = patient.risk is RiskLevel.HIGH
        every = policy.high_risk_checkin_interval_days if high else policy.checkin_interval_days
        last = last_call.get(patient_id)
        if last is None:
            due = patient.first_start
            summary = "check-in call: none recorded yet"
        else:
            last_day = last.astimezone(tz).date()
            due = last_day + timedelta(days=every)
            summary = f"check-in call every {every} days: last on {last_day.isoformat()}"
        if due > horizon:
            continue
        yield WorkItem(
            kind=WorkKind.CHECK_IN,
            urgency=Urgency.OVERDUE if due < today else Urgency.DUE,
            patient_id=patient_id,
            risk_level=patient.risk,
            due_on=due,
            summary=summary,
        )


# -- tasks -------------------------------------------------------------------------------


def _tasks(
    tasks: Iterable[OpenTask],
    risk: Mapping[str, RiskLevel | None],
    today: date,
    policy: WorklistPolicy,
) -> Iterator[WorkItem]:
    horizon = today + timedelta(days=policy.due_soon_days)
    for task in tasks:
        priority = task.priority or TaskPriority.ROUTINE
        due = task.due_end
        if priority in (TaskPriority.STAT, TaskPriority.ASAP):
            urgency = Urgency.IMMEDIATE
        elif due is not None and due < today:
            urgency = Urgency.OVERDUE
        elif priority is TaskPriority.URGENT:
            urgency = Urgency.URGENT
        elif due is not None and due <= horizon:
            urgency = Urgency.DUE
        else:
            urgency = Urgency.ROUTINE
        label = f"{task.kind or 'task'} ({task.status})"
        yield WorkItem(
            kind=WorkKind.TASK,
            urgency=urgency,
            patient_id=task.patient_id,
            risk_level=risk.get(task.patient_id) if task.patient_id else None,
            due_on=due,
            summary=f"{label}: {task.description}" if task.description else label,
            record_kind=EntityKind.CARE_TASK.value,
            record_id=task.id,
            priority=priority,
        )


# -- referrals ---------------------------------------------------------------------------


def _referrals(
    referrals: Iterable[AwaitingReferral],
    risk: Mapping[str, RiskLevel | None],
    now: datetime,
    tz: ZoneInfo,
    policy: WorklistPolicy,
) -> Iterator[WorkItem]:
    sla = timedelta(days=policy.referral_sla_days)
    for referral in referrals:
        sent = referral.authored_at or now
        deadline = sent + sla
        waited = (now - sent).days
        past = now > deadline
        summary = f"referral {referral.task_status} for {waited} days, no response"
        if past:
            summary += f" (past the {policy.referral_sla_days}-day service level)"
        yield WorkItem(
            kind=WorkKind.REFERRAL,
            urgency=Urgency.OVERDUE if past else Urgency.ROUTINE,
            patient_id=referral.patient_id,
            risk_level=risk.get(referral.patient_id) if referral.patient_id else None,
            due_on=deadline.astimezone(tz).date(),
            summary=summary,
            record_kind=EntityKind.REFERRAL.value,
            record_id=referral.id,
            priority=referral.priority,
        )


# -- sync conflicts ----------------------------------------------------------------------


def _conflicts(
    conflicts: Iterable[OpenConflict],
    risk: Mapping[str, RiskLevel | None],
    tz: ZoneInfo,
) -> Iterator[WorkItem]:
    for conflict in conflicts:
        detected = conflict.detected_at
        yield WorkItem(
            kind=WorkKind.SYNC_CONFLICT,
            urgency=Urgency.URGENT,
            patient_id=conflict.patient_id,
            risk_level=risk.get(conflict.patient_id),
            due_on=detected.astimezone(tz).date() if detected is not None else None,
            summary=(
                f"sync conflict ({conflict.reason}) on the {conflict.resource_type} of "
                f"{conflict.entity_kind} {conflict.local_id}"
            ),
            record_kind="sync_conflict",
            record_id=str(conflict.id),
        )


# -- billing thresholds ------------------------------------------------------------------


def _near_thresholds(
    store: Store,
    patients: Mapping[str, _Patient],
    today: date,
    tz: ZoneInfo,
    rules: RuleYear,
    policy: WorklistPolicy,
) -> Iterator[WorkItem]:
    month = (today.year, today.month)
    first_day, last_day = month_days(month)
    if (last_day - today).days >= policy.billing_month_end_days:
        return
    counted: dict[tuple[str, Program, StaffRole], int] = defaultdict(int)
    groups = store.month_minutes.groups(
        month=month, tz=tz, counting=COUNTING_STATUSES, patient_ids=sorted(patients)
    )
    for group in groups:
        if group.countable and group.program is not None and group.staff_role is not None:
            counted[(group.patient_id, group.program, group.staff_role)] += group.minutes
    codes = rules.timed_codes()
    for patient_id, patient in patients.items():
        nearest: tuple[int, str, int, int] | None = None  # (short, code, minutes, threshold)
        for code, rule in codes:
            if not _applies(rule, patient, first_day):
                continue
            minutes = sum(
                counted.get((patient_id, program, role), 0)
                for program in rule.programs
                for role in rule.counts_time_of
            )
            step = next(((t, c) for t, c in _thresholds(code, rule) if t > minutes), None)
            if minutes == 0 or step is None:
                continue
            threshold, earned = step
            short = threshold - minutes
            if short <= policy.billing_threshold_margin_minutes and (
                nearest is None or short < nearest[0]
            ):
                nearest = (short, earned, minutes, threshold)
        if nearest is None:
            continue
        short, code, minutes, threshold = nearest
        yield WorkItem(
            kind=WorkKind.BILLING_THRESHOLD,
            urgency=Urgency.DUE,
            patient_id=patient_id,
            risk_level=patient.risk,
            due_on=last_day,
            summary=f"{code}: {minutes} of {threshold} minutes this month, {short} short",
            code=code,
            minutes=minutes,
            threshold_minutes=threshold,
        )


def _applies(rule: TimedCode, patient: _Patient, month_start: date) -> bool:
    for program in rule.programs:
        start = patient.programs.get(program)
        if start is None:
            continue
        first_month = (start.year, start.month) == (month_start.year, month_start.month)
        if rule.months is MonthPhase.ANY or (rule.months is MonthPhase.FIRST) == first_month:
            return True
    return False


def _thresholds(code: str, rule: TimedCode) -> list[tuple[int, str]]:
    """The minutes at which the code, then each unit of its add-on, is earned, and by which
    code."""
    found = [(rule.threshold_minutes, code)]
    if rule.add_on is not None:
        units = rule.add_on.max_units_per_month or _MAX_ADD_ON_UNITS
        step = rule.add_on.increment_minutes
        found += [
            (rule.threshold_minutes + step * n, rule.add_on.code) for n in range(1, units + 1)
        ]
    return found


# -- RPM monitoring ----------------------------------------------------------------------

_ALERT_KINDS = {
    AlertKind.DEVICE_DAYS: (WorkKind.DEVICE_DAYS, Urgency.DUE),
    AlertKind.NO_READINGS: (WorkKind.NO_READINGS, Urgency.DUE),
    AlertKind.OUT_OF_RANGE: (WorkKind.OUT_OF_RANGE, Urgency.URGENT),
}


def _monitoring(
    store: Store,
    patients: Mapping[str, _Patient],
    today: date,
    rules: RuleYear | None,
    policy: WorklistPolicy,
) -> Iterator[WorkItem]:
    monitored = sorted(p for p, patient in patients.items() if Program.RPM in patient.programs)
    alerts = monitoring_alerts(
        store,
        patient_ids=monitored,
        today=today,
        rules=rules,
        policy=MonitoringPolicy(
            no_readings_days=policy.no_readings_days,
            reading_range_days=policy.reading_range_days,
        ),
    )
    for alert in alerts:
        kind, urgency = _ALERT_KINDS[alert.kind]
        yield WorkItem(
            kind=kind,
            urgency=urgency,
            patient_id=alert.patient_id,
            risk_level=patients[alert.patient_id].risk,
            due_on=alert.due_on,
            summary=alert.summary,
            record_kind="device_reading" if alert.reading_id else None,
            record_id=alert.reading_id,
            code=alert.code,
            days_with_readings=alert.days_with_readings,
            period_day=alert.period_day,
        )
