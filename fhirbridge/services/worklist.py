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
  does (``fhirbridge.billing.aggregate.summarize_minutes``);
- open **sync-conflict**s on records of caseload patients.

Order: by urgency (immediate = stat/asap task; overdue; urgent = urgent task or sync conflict;
due; routine), then by the patient's risk (highest enrollment risk level first), then by due
date, kind and record id, so a page boundary never moves between two identical requests.

Everything is computed by a fixed number of SQL queries whatever the caseload size (caseload,
last check-ins, tasks, referrals, conflicts, and the month's minutes near month end); nothing
queries per patient.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, func, or_, select, union_all
from sqlalchemy.orm import Session

from fhirbridge.billing.aggregate import month_days, summarize_minutes
from fhirbridge.billing.rules import MonthPhase, RuleYear, TimedCode
from fhirbridge.config import Settings
from fhirbridge.domain import (
    EnrollmentStatus,
    Program,
    RiskLevel,
    StaffRole,
    TaskPriority,
    TaskStatus,
    TimeEntryActivity,
    TimeEntryStatus,
)
from fhirbridge.persistence import EntityKind, Store
from fhirbridge.persistence.repositories.conflicts import ConflictState
from fhirbridge.persistence.tables import (
    CarePlanRow,
    CareTaskRow,
    CareTeamMemberRow,
    ChargeRow,
    EnrollmentRow,
    GoalRow,
    PatientLinkRow,
    ProgramConsentRow,
    ReferralRow,
    SyncConflictRow,
    TimeEntryRow,
)
from fhirbridge.services.errors import NotFound

__all__ = [
    "Urgency",
    "WorkItem",
    "WorkKind",
    "Worklist",
    "WorklistPolicy",
    "build_worklist",
]

CARING = (EnrollmentStatus.ACTIVE.value, EnrollmentStatus.ON_HOLD.value)
OPEN_TASKS = tuple(
    s.value
    for s in (
        TaskStatus.REQUESTED,
        TaskStatus.RECEIVED,
        TaskStatus.ACCEPTED,
        TaskStatus.READY,
        TaskStatus.IN_PROGRESS,
        TaskStatus.ON_HOLD,
    )
)
AWAITING_RESPONSE = (TaskStatus.REQUESTED.value, TaskStatus.RECEIVED.value)
_MAX_ADD_ON_UNITS = 10  # an add-on without a stated cap: thresholds beyond this are not watched


class WorkKind(StrEnum):
    CHECK_IN = "check-in"
    TASK = "task"
    REFERRAL = "referral"
    BILLING_THRESHOLD = "billing-threshold"
    SYNC_CONFLICT = "sync-conflict"


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


@dataclass(slots=True)
class _Patient:
    risk: RiskLevel | None = None
    first_start: date = date.max
    programs: dict[Program, date] = field(default_factory=dict)  # program -> enrollment start


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
) -> Worklist:
    """One page of ``staff_id``'s worklist (see module doc). ``rules``: the billing rule year
    of ``now``'s month; without it no billing-threshold items are listed."""
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size start at 1")
    member = store.care_team.get(staff_id)
    if member is None:
        raise NotFound("care team member", staff_id)
    session = store.session
    today = now.astimezone(tz).date()
    caseload = _caseload_ids(staff_id)
    patients = _caseload(session, staff_id)
    risk = {patient_id: p.risk for patient_id, p in patients.items()}
    items: list[WorkItem] = []
    items += _check_ins(session, caseload, patients, today, tz, policy)
    items += _tasks(session, staff_id, caseload, risk, today, policy)
    items += _referrals(session, caseload, risk, now, tz, policy)
    items += _conflicts(session, caseload, risk, tz)
    if rules is not None and patients:
        items += _near_thresholds(session, patients, today, tz, rules, policy)
    items.sort(key=_order)
    first = (page - 1) * page_size
    return Worklist(
        staff_id=staff_id,
        generated_at=now,
        page=page,
        page_size=page_size,
        total=len(items),
        items=tuple(items[first : first + page_size]),
    )


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


def _caseload_ids(staff_id: str) -> Select[str]:
    """Patients of the staff member's team whose current enrollment names them."""
    return (
        select(EnrollmentRow.patient_id)
        .join(PatientLinkRow, PatientLinkRow.id == EnrollmentRow.patient_id)
        .join(CareTeamMemberRow, CareTeamMemberRow.id == EnrollmentRow.care_manager_id)
        .where(
            EnrollmentRow.care_manager_id == staff_id,
            EnrollmentRow.status.in_(CARING),
            PatientLinkRow.team == CareTeamMemberRow.team,
        )
    )


def _caseload(session: Session, staff_id: str) -> dict[str, _Patient]:
    statement = _caseload_ids(staff_id).add_columns(
        EnrollmentRow.program, EnrollmentRow.risk_level, EnrollmentRow.start_on
    )
    patients: dict[str, _Patient] = defaultdict(_Patient)
    for patient_id, program, risk_level, start in session.execute(statement):
        patient = patients[patient_id]
        level = RiskLevel(risk_level) if risk_level else None
        if _RISK_RANK[level] < _RISK_RANK[patient.risk]:
            patient.risk = level
        patient.first_start = min(patient.first_start, start)
        patient.programs[Program(program)] = start
    return dict(patients)


# -- check-ins ---------------------------------------------------------------------------


def _check_ins(
    session: Session,
    caseload: Select[str],
    patients: Mapping[str, _Patient],
    today: date,
    tz: ZoneInfo,
    policy: WorklistPolicy,
) -> Iterator[WorkItem]:
    entry = TimeEntryRow
    statement = (
        select(entry.patient_id, func.max(entry.started_at))
        .where(
            entry.status == TimeEntryStatus.FINISHED.value,
            entry.activity == TimeEntryActivity.CHECK_IN_CALL.value,
            entry.patient_id.in_(caseload),
        )
        .group_by(entry.patient_id)
    )
    last_call: dict[str, datetime] = {
        p: last for p, last in session.execute(statement) if p is not None and last is not None
    }
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
    session: Session,
    staff_id: str,
    caseload: Select[str],
    risk: Mapping[str, RiskLevel | None],
    today: date,
    policy: WorklistPolicy,
) -> Iterator[WorkItem]:
    task = CareTaskRow
    statement = select(
        task.id,
        task.patient_id,
        task.kind,
        task.status,
        task.priority,
        task.due_end,
        task.description,
    ).where(
        task.status.in_(OPEN_TASKS),
        or_(
            task.owner_id == staff_id,
            and_(task.owner_id.is_(None), task.patient_id.in_(caseload)),
        ),
    )
    horizon = today + timedelta(days=policy.due_soon_days)
    for task_id, patient_id, kind, status, priority_value, due, description in session.execute(
        statement
    ):
        priority = TaskPriority(priority_value) if priority_value else TaskPriority.ROUTINE
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
        label = f"{kind or 'task'} ({status})"
        yield WorkItem(
            kind=WorkKind.TASK,
            urgency=urgency,
            patient_id=patient_id,
            risk_level=risk.get(patient_id) if patient_id else None,
            due_on=due,
            summary=f"{label}: {description}" if description else label,
            record_kind=EntityKind.CARE_TASK.value,
            record_id=task_id,
            priority=priority,
        )


# -- referrals ---------------------------------------------------------------------------


def _referrals(
    session: Session,
    caseload: Select[str],
    risk: Mapping[str, RiskLevel | None],
    now: datetime,
    tz: ZoneInfo,
    policy: WorklistPolicy,
) -> Iterator[WorkItem]:
    referral = ReferralRow
    statement = select(
        referral.id,
        referral.patient_id,
        referral.task_status,
        referral.authored_at,
        referral.priority,
    ).where(
        referral.patient_id.in_(caseload),
        referral.task_status.in_(AWAITING_RESPONSE),
        referral.status == "active",
    )
    sla = timedelta(days=policy.referral_sla_days)
    for referral_id, patient_id, task_status, authored_at, priority in session.execute(statement):
        sent = authored_at or now
        deadline = sent + sla
        waited = (now - sent).days
        past = now > deadline
        summary = f"referral {task_status} for {waited} days, no response"
        if past:
            summary += f" (past the {policy.referral_sla_days}-day service level)"
        yield WorkItem(
            kind=WorkKind.REFERRAL,
            urgency=Urgency.OVERDUE if past else Urgency.ROUTINE,
            patient_id=patient_id,
            risk_level=risk.get(patient_id) if patient_id else None,
            due_on=deadline.astimezone(tz).date(),
            summary=summary,
            record_kind=EntityKind.REFERRAL.value,
            record_id=referral_id,
            priority=TaskPriority(priority) if priority else None,
        )


# -- sync conflicts ----------------------------------------------------------------------

# Records that belong to a patient, by the kind sync conflicts name them with.
_PATIENT_RECORDS: tuple[tuple[EntityKind, Any], ...] = (
    (EntityKind.ENROLLMENT, EnrollmentRow),
    (EntityKind.PROGRAM_CONSENT, ProgramConsentRow),
    (EntityKind.CARE_PLAN, CarePlanRow),
    (EntityKind.GOAL, GoalRow),
    (EntityKind.CARE_TASK, CareTaskRow),
    (EntityKind.TIME_ENTRY, TimeEntryRow),
    (EntityKind.REFERRAL, ReferralRow),
    (EntityKind.CHARGE, ChargeRow),
)


def _conflicts(
    session: Session,
    caseload: Select[str],
    risk: Mapping[str, RiskLevel | None],
    tz: ZoneInfo,
) -> Iterator[WorkItem]:
    conflict = SyncConflictRow
    parts = [
        select(
            conflict.id,
            conflict.entity_kind,
            conflict.local_id,
            conflict.resource_type,
            conflict.reason,
            conflict.detected_at,
            row.patient_id.label("patient_id"),
        )
        .join(row, and_(row.id == conflict.local_id, conflict.entity_kind == kind.value))
        .where(conflict.state == ConflictState.OPEN.value, row.patient_id.in_(caseload))
        for kind, row in _PATIENT_RECORDS
    ]
    found = session.execute(union_all(*parts))
    for conflict_id, kind, local_id, resource_type, reason, detected_at, patient_id in found:
        yield WorkItem(
            kind=WorkKind.SYNC_CONFLICT,
            urgency=Urgency.URGENT,
            patient_id=patient_id,
            risk_level=risk.get(patient_id),
            due_on=_day(detected_at, tz),
            summary=f"sync conflict ({reason}) on the {resource_type} of {kind} {local_id}",
            record_kind="sync_conflict",
            record_id=str(conflict_id),
        )


def _day(moment: Any, tz: ZoneInfo) -> date | None:
    # A UNION's columns come back with the first part's types; be lenient about SQLite text.
    if isinstance(moment, datetime):
        return moment.astimezone(tz).date()
    if isinstance(moment, str):
        return datetime.fromisoformat(moment).date()
    return None


# -- billing thresholds ------------------------------------------------------------------


def _near_thresholds(
    session: Session,
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
    groups = summarize_minutes(session, month=month, tz=tz, patient_ids=sorted(patients))
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
