"""Transitional care management (TCM): discharges open periods, contacts and visits close them.

The rules this service keeps (the counting itself is ``fhirbridge.domain.transitional_care``):

- **Opening.** A qualifying discharge (``fhirbridge.mapping.discharge``: finished, a qualifying
  stay, to the community) of a patient we have (a patient link: enrolled or attributed) opens
  one period. Opening is idempotent on the discharge Encounter's identity: the same discharge
  pulled twice, or pulled and notified, finds the period it opened. A discharge of a patient
  we do not have opens nothing. A discharge within 30 days of an earlier one still opens a
  period (the patient still needs the calls), and its judgement says why it cannot be billed.
- **Deadlines on the worklist.** Opening creates two care tasks (``CareTaskKind.TCM_CONTACT``
  and ``TCM_VISIT``, status ready, synced as FHIR Tasks): the contact due on business day 2, the
  visit due on day 7 until the care manager records moderate complexity (day 14 then). The
  contact task is ``urgent`` (two business days leave no room for the worklist's "due soon"). Their
  owner is the care manager of the patient's active enrollment, if there is one. When a
  deadline falls in a year without holiday calendar the task says so.
- **Complexity** (moderate or high) is recorded by a care team member through the API; it is
  never guessed from the stay. Without it no code is earned, and the explanation says so.
- **Contacts** (interactive contact, documented unsuccessful attempt, face-to-face visit) are
  recorded through the API. The contact task completes with the first interactive contact, or
  with the attempts that stand in for it; the visit task with the visit. A late contact still
  completes its task (the work was done); the judgement says it was late.
- **Minutes never count twice.** A contact's minutes stay on the contact, in program TCM: they
  are not time entries, so the monthly time roll-up (CCM, PCM...) never sees them. Time entries
  a care manager records under a TCM enrollment count toward no code either: no timed code of a
  rule year lists TCM (the billing loader refuses one that does).
- **Billing** (``tcm_program``, registered first in ``services.billing.PROGRAM_SOURCES``): a
  period is reported in the month of its visit (the date of service), or, without a visit, in
  the month its 30 days end; 99496 / 99495 earned or not, with the reason.

Like every service these flush and never commit.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from fhirbridge.billing.programs import ProgramMonth
from fhirbridge.billing.result import BilledCode
from fhirbridge.billing.rules import RuleYear
from fhirbridge.billing.transitional_care import (
    TcmMonthInput,
    code_terms,
    holiday_calendar_name,
    tcm_month,
)
from fhirbridge.domain import (
    CareTask,
    CareTaskKind,
    ContactMode,
    EnrollmentStatus,
    StaffRole,
    TaskPriority,
    TaskStatus,
)
from fhirbridge.domain.transitional_care import (
    BusinessCalendar,
    Discharge,
    TcmCodeTerms,
    TcmComplexity,
    TcmContact,
    TcmContactKind,
    TcmJudgement,
    TcmPeriod,
    TcmPeriodStatus,
    contact_deadline,
    judge_periods,
    visit_deadline,
)
from fhirbridge.mapping.calendars import DEFAULT_CALENDAR, load_calendar
from fhirbridge.mapping.discharge import DischargeRules, NotADischarge
from fhirbridge.persistence import Store
from fhirbridge.services.errors import FieldError, NotFound, Rejected

__all__ = [
    "NewTcmContact",
    "NotOursHook",
    "Opening",
    "OpeningOutcome",
    "TcmPolicy",
    "TcmView",
    "discharge_hook",
    "get_period",
    "open_period",
    "periods_of",
    "receive_discharge",
    "record_contact",
    "set_complexity",
    "tcm_policy",
    "tcm_program",
]

_HIGH_VISIT_DAYS = 7
# Encounter.class must be known: a visit is in person, a call or an attempt virtual unless said.
_DEFAULT_MODE = {
    TcmContactKind.INTERACTIVE_CONTACT: ContactMode.VIRTUAL,
    TcmContactKind.UNSUCCESSFUL_ATTEMPT: ContactMode.VIRTUAL,
    TcmContactKind.FACE_TO_FACE_VISIT: ContactMode.IN_PERSON,
}
_MODERATE_VISIT_DAYS = 14


@dataclass(frozen=True, slots=True)
class TcmPolicy:
    """What judging and scheduling TCM needs: the calendar, the code terms, the practice zone."""

    calendar: BusinessCalendar
    terms: tuple[TcmCodeTerms, ...]
    tz: ZoneInfo

    @property
    def contact_business_days(self) -> int:
        return min((t.contact_within_business_days for t in self.terms), default=2)

    def visit_days(self, complexity: TcmComplexity | None) -> int:
        """The visit deadline the worklist shows: the 99496 one until moderate is recorded."""
        wanted = [
            t.visit_within_days
            for t in self.terms
            if complexity is None or complexity in t.complexities
        ]
        if complexity == TcmComplexity.MODERATE:
            return max(wanted, default=_MODERATE_VISIT_DAYS)
        return min(wanted, default=_HIGH_VISIT_DAYS)


@functools.cache
def _calendar(name: str) -> BusinessCalendar:
    return load_calendar(name)


def tcm_policy(rules: RuleYear, *, tz: ZoneInfo) -> TcmPolicy:
    """The policy of a rule year, with the holiday calendar it names (loaded once)."""
    name = holiday_calendar_name(rules) or DEFAULT_CALENDAR
    return TcmPolicy(calendar=_calendar(name), terms=tuple(code_terms(rules)), tz=tz)


class OpeningOutcome(StrEnum):
    OPENED = "opened"
    ALREADY_OPEN = "already-open"  # the same discharge, seen before
    UNKNOWN_PATIENT = "unknown-patient"  # not a patient we have
    NOT_A_DISCHARGE = "not-a-discharge"  # does not qualify (reason in ``reason``)


@dataclass(frozen=True, slots=True)
class Opening:
    outcome: OpeningOutcome
    period: TcmPeriod | None = None
    reason: str | None = None


def open_period(*, store: Store, discharge: Discharge, policy: TcmPolicy, now: datetime) -> Opening:
    """Open the period of ``discharge`` with its two deadline tasks (idempotent)."""
    existing = store.tcm_periods.find_by_discharge(discharge.discharge_key)
    if existing is not None:
        return Opening(OpeningOutcome.ALREADY_OPEN, existing)
    patient = store.patients.find_by_ehr_reference(discharge.patient_reference)
    if patient is None:
        return Opening(OpeningOutcome.UNKNOWN_PATIENT, reason="not a patient we have")
    discharged_on = discharge.discharged_at.astimezone(policy.tz).date()
    active = [
        e
        for e in store.enrollments.list_for_patient(patient.id)
        if e.status == EnrollmentStatus.ACTIVE
    ]
    care_manager = next((e.care_manager_id for e in active if e.care_manager_id), None)
    practitioner = next(
        (e.billing_practitioner_id for e in active if e.billing_practitioner_id), None
    )
    period = TcmPeriod(
        id=uuid.uuid4().hex,
        patient_id=patient.id,
        discharge_key=discharge.discharge_key,
        discharged_on=discharged_on,
        setting=discharge.setting,
        disposition=discharge.disposition,
        practitioner_id=practitioner,
        opened_at=now,
    )
    contact_task = _task(
        patient.id,
        CareTaskKind.TCM_CONTACT,
        now,
        care_manager,
        discharged_on,
        _contact_due(period, policy),
        priority=TaskPriority.URGENT,
    )
    visit_task = _task(
        patient.id,
        CareTaskKind.TCM_VISIT,
        now,
        care_manager,
        discharged_on,
        _visit_due(period, policy),
    )
    store.save(contact_task, new=True)
    store.save(visit_task, new=True)
    period.contact_task_id = contact_task.id
    period.visit_task_id = visit_task.id
    store.save(period, new=True)
    return Opening(OpeningOutcome.OPENED, period)


def _contact_due(period: TcmPeriod, policy: TcmPolicy) -> tuple[date, str]:
    days = policy.contact_business_days
    due = contact_deadline(period.discharged_on, days, policy.calendar)
    words = (
        f"TCM: interactive contact by business day {days} after the discharge of "
        f"{period.discharged_on.isoformat()}"
    )
    note = due.calendar_note(policy.calendar)
    return due.due, f"{words} ({note})" if note else words


def _visit_due(period: TcmPeriod, policy: TcmPolicy) -> tuple[date, str]:
    days = policy.visit_days(period.complexity)
    due = visit_deadline(period.discharged_on, days).due
    which = {
        None: "complexity not recorded yet: the high-complexity deadline",
        TcmComplexity.HIGH: "high complexity",
        TcmComplexity.MODERATE: "moderate complexity",
    }[period.complexity]
    return due, (
        f"TCM: face-to-face visit by day {days} after the discharge of "
        f"{period.discharged_on.isoformat()} ({which})"
    )


def _task(
    patient_id: str,
    kind: CareTaskKind,
    now: datetime,
    owner: str | None,
    start: date,
    due: tuple[date, str],
    *,
    priority: TaskPriority | None = None,
) -> CareTask:
    return CareTask(
        id=uuid.uuid4().hex,
        status=TaskStatus.READY,
        patient_id=patient_id,
        kind=kind,
        authored_on=now,
        description=due[1],
        priority=priority,
        owner_id=owner,
        due_start=start,
        due_end=due[0],
    )


def receive_discharge(
    *,
    store: Store,
    resource: Mapping[str, Any],
    rules: DischargeRules,
    policy: TcmPolicy,
    now: datetime,
) -> Opening:
    """A discharge Encounter read from another system (pull, notification, Bulk import)."""
    read = rules.read(resource)
    if isinstance(read, NotADischarge):
        return Opening(OpeningOutcome.NOT_A_DISCHARGE, reason=read.reason)
    return open_period(store=store, discharge=read, policy=policy, now=now)


NotOursHook = Callable[[Store, Mapping[str, Any]], bool]


def discharge_hook(
    *, rules: DischargeRules, policy: TcmPolicy, clock: Callable[[], datetime]
) -> NotOursHook:
    """For the pull's ``not_ours`` hook: True when the resource opened (or had opened) a
    period, so the pull reports it as handled."""

    def hook(store: Store, resource: Mapping[str, Any]) -> bool:
        if resource.get("resourceType") != "Encounter":
            return False
        opening = receive_discharge(
            store=store, resource=resource, rules=rules, policy=policy, now=clock()
        )
        return opening.outcome in (OpeningOutcome.OPENED, OpeningOutcome.ALREADY_OPEN)

    return hook


# -- recording -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewTcmContact:
    kind: TcmContactKind
    occurred_at: datetime
    staff_id: str
    mode: ContactMode | None = None
    minutes: int | None = None
    note: str | None = None


def get_period(*, store: Store, period_id: str) -> TcmPeriod:
    period = store.tcm_periods.get(period_id)
    if period is None:
        raise NotFound("TCM period", period_id)
    return period


def record_contact(
    *, store: Store, period_id: str, new: NewTcmContact, policy: TcmPolicy
) -> TcmContact:
    """Record a contact, an unsuccessful attempt or the visit, and complete the task it meets."""
    period = get_period(store=store, period_id=period_id)
    errors = _staff_errors(store, period, "staff_id", new.staff_id)
    occurred_on = new.occurred_at.astimezone(policy.tz).date()
    if period.status == TcmPeriodStatus.CANCELLED:
        errors.append(FieldError("period_id", "the period is cancelled"))
    if occurred_on < period.discharged_on:
        errors.append(
            FieldError("occurred_at", f"before the discharge on {period.discharged_on.isoformat()}")
        )
    elif occurred_on > period.last_day:
        errors.append(
            FieldError("occurred_at", f"after the period's last day {period.last_day.isoformat()}")
        )
    if new.kind == TcmContactKind.FACE_TO_FACE_VISIT and new.mode == ContactMode.VIRTUAL:
        errors.append(FieldError("mode", "a face-to-face visit is in person"))
    if new.minutes is not None and new.minutes < 0:
        errors.append(FieldError("minutes", "negative"))
    if errors:
        raise Rejected("TCM contact", errors)
    contact = TcmContact(
        id=uuid.uuid4().hex,
        period_id=period.id,
        patient_id=period.patient_id,
        kind=new.kind,
        occurred_on=occurred_on,
        occurred_at=new.occurred_at,
        staff_id=new.staff_id,
        mode=new.mode or _DEFAULT_MODE[new.kind],
        minutes=new.minutes,
        note=new.note,
    )
    store.save(contact, new=True)
    if new.kind == TcmContactKind.FACE_TO_FACE_VISIT:
        member = store.care_team.get(new.staff_id)
        if (
            period.practitioner_id is None
            and member is not None
            and member.role == StaffRole.PHYSICIAN
        ):
            period.practitioner_id = member.id
            store.save(period)
        _complete(store, period.visit_task_id, "face-to-face visit recorded")
    elif new.kind == TcmContactKind.INTERACTIVE_CONTACT:
        _complete(store, period.contact_task_id, "interactive contact recorded")
    else:
        attempts = [
            c
            for c in store.tcm_contacts.list_for_period(period.id)
            if c.kind == TcmContactKind.UNSUCCESSFUL_ATTEMPT
        ]
        needed = next((t.attempts_for_contact for t in policy.terms), None)
        if needed is not None and len(attempts) >= needed:
            _complete(store, period.contact_task_id, f"{len(attempts)} unsuccessful attempts")
    return contact


def _complete(store: Store, task_id: str | None, reason: str) -> None:
    task = None if task_id is None else store.care_tasks.get(task_id)
    if task is None or task.status == TaskStatus.COMPLETED:
        return
    if task.status == TaskStatus.READY:
        task.move_to(TaskStatus.IN_PROGRESS)
    if task.status == TaskStatus.IN_PROGRESS:
        task.move_to(TaskStatus.COMPLETED, reason=reason)
        store.save(task)


def set_complexity(
    *,
    store: Store,
    period_id: str,
    complexity: TcmComplexity,
    recorded_by: str,
    policy: TcmPolicy,
) -> TcmPeriod:
    """Record the transition's complexity; the visit task's due day follows it."""
    period = get_period(store=store, period_id=period_id)
    errors = _staff_errors(store, period, "recorded_by", recorded_by)
    if errors:
        raise Rejected("TCM period", errors)
    period.complexity = complexity
    period.complexity_recorded_by = recorded_by
    store.save(period)
    task = None if period.visit_task_id is None else store.care_tasks.get(period.visit_task_id)
    if task is not None and task.status != TaskStatus.COMPLETED:
        task.due_end, task.description = _visit_due(period, policy)
        store.save(task)
    return period


def _staff_errors(store: Store, period: TcmPeriod, field: str, member_id: str) -> list[FieldError]:
    member = store.care_team.get(member_id)
    patient = store.patients.get(period.patient_id)
    if member is None or patient is None or member.team != patient.team:
        return [FieldError(field, "no such care team member")]
    return []


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcmView:
    """A period with its contacts, deadline tasks and today's judgement."""

    period: TcmPeriod
    contacts: tuple[TcmContact, ...]
    judgement: TcmJudgement
    contact_task: CareTask | None
    visit_task: CareTask | None
    calendar_note: str | None


def periods_of(*, store: Store, patient_id: str, policy: TcmPolicy) -> list[TcmView]:
    """A patient's periods, oldest first, each judged as of now."""
    periods = store.tcm_periods.list_for_patient(patient_id)
    contacts = store.tcm_contacts.list_for_patients([patient_id])
    judged = {
        j.period_id: j
        for j in judge_periods(periods, contacts, terms=policy.terms, calendar=policy.calendar)
    }
    tasks = store.care_tasks.get_many(
        [t for p in periods for t in (p.contact_task_id, p.visit_task_id) if t is not None]
    )
    views = []
    for period in periods:
        judgement = judged.get(period.id)
        if judgement is None:  # a cancelled period: judged alone, for its deadlines
            judgement = judge_periods(
                [_reopened(period)], contacts, terms=policy.terms, calendar=policy.calendar
            )[0]
        views.append(
            TcmView(
                period=period,
                contacts=tuple(c for c in contacts if c.period_id == period.id),
                judgement=judgement,
                contact_task=tasks.get(period.contact_task_id or ""),
                visit_task=tasks.get(period.visit_task_id or ""),
                calendar_note=judgement.contact_due.calendar_note(policy.calendar),
            )
        )
    return views


def _reopened(period: TcmPeriod) -> TcmPeriod:
    copy = TcmPeriod(**{name: getattr(period, name) for name in TcmPeriod.__slots__})
    copy.status = TcmPeriodStatus.OPEN
    return copy


# -- billing -------------------------------------------------------------------------------


def tcm_program(
    store: Store,
    *,
    month: tuple[int, int],
    tz: ZoneInfo,
    rules: RuleYear,
    patient_ids: Sequence[str] | None,
    billed: Mapping[str, Sequence[BilledCode]],
) -> ProgramMonth:
    """TCM as a ``ProgramSource``: the month's periods judged (see module doc). It is judged
    first, so ``billed`` (what earlier programs billed) is empty and unused."""
    del billed
    policy = tcm_policy(rules, tz=tz)
    if not policy.terms:
        return ProgramMonth()
    periods = store.tcm_periods.list_for_patients(patient_ids)
    contacts = store.tcm_contacts.list_for_patients(patient_ids)
    by_patient: dict[str, list[TcmPeriod]] = {}
    for period in periods:
        by_patient.setdefault(period.patient_id, []).append(period)
    contacts_of: dict[str, list[TcmContact]] = {}
    for contact in contacts:
        contacts_of.setdefault(contact.patient_id, []).append(contact)
    inputs = [
        TcmMonthInput(mine, contacts_of.get(patient_id, []))
        for patient_id, mine in sorted(by_patient.items())
    ]
    return tcm_month(inputs, month=month, rules=rules, calendar=policy.calendar)
