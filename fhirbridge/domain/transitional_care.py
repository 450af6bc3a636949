"""Transitional care management (TCM): the 30 days after a discharge, and whether they earn
99495 or 99496.

The rules (shared/reference/programs.md; the code terms come from the year's rule file):

- A qualifying discharge opens a **period**: the discharge day and the 29 days after.
- An **interactive contact** with the patient or caregiver is due within N business days
  (2): business day 1 is the first business day *after* the discharge day; business days are
  Monday to Friday except the holidays of a ``BusinessCalendar``. A contact on the discharge
  day, or on a weekend before the deadline, is in time. A given number of documented
  unsuccessful attempts made in time stand in for the contact (verify: the rule file says how
  many, or that they do not).
- The **face-to-face visit** is due within N calendar days (14 for 99495, 7 for 99496),
  counted from the day after discharge: a discharge on the 1st allows a visit through the 8th
  or the 15th. A high-complexity stay whose visit comes on day 8-14 still earns 99495.
- **Complexity** (moderate or high medical decision-making) is what the care manager records;
  without it no code is judged.
- **Once per patient per 30 days**: a discharge inside the period of an earlier discharge
  whose TCM was earned earns nothing.
- The **date of service** is the visit's day.

A year without holiday calendar entries still counts weekends; every deadline that falls in or
passes through such a year says so (``Deadline.missing_calendar_years``).

Pure Python: the judgement takes the period, its contacts, the calendar and the code terms and
answers with plain-words explanations ("contact on business day 3; due by business day 2").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from fhirbridge.domain.enrollment import Program
from fhirbridge.domain.timeentry import ContactMode

__all__ = [
    "PERIOD_DAYS",
    "BusinessCalendar",
    "Deadline",
    "Discharge",
    "DischargeSetting",
    "TcmCodeTerms",
    "TcmCodeVerdict",
    "TcmComplexity",
    "TcmContact",
    "TcmContactKind",
    "TcmJudgement",
    "TcmPeriod",
    "TcmPeriodStatus",
    "business_day_number",
    "contact_deadline",
    "judge_period",
    "judge_periods",
    "visit_day_number",
    "visit_deadline",
]

PERIOD_DAYS = 30  # the discharge day and the 29 days after
_WEEKEND = frozenset({5, 6})  # Saturday, Sunday (date.weekday())


class TcmComplexity(StrEnum):
    """The medical decision-making of the transition, as the care manager records it."""

    MODERATE = "moderate"
    HIGH = "high"


class DischargeSetting(StrEnum):
    """The stay a qualifying discharge ends (programs.md, TCM trigger)."""

    INPATIENT_HOSPITAL = "inpatient-hospital"
    INPATIENT_PSYCHIATRIC = "inpatient-psychiatric"
    LONG_TERM_CARE_HOSPITAL = "long-term-care-hospital"
    SKILLED_NURSING_FACILITY = "skilled-nursing-facility"
    INPATIENT_REHABILITATION = "inpatient-rehabilitation"
    OBSERVATION = "observation"
    PARTIAL_HOSPITALIZATION = "partial-hospitalization"


class TcmContactKind(StrEnum):
    INTERACTIVE_CONTACT = "interactive-contact"  # phone, electronic or direct, with the patient
    UNSUCCESSFUL_ATTEMPT = "unsuccessful-attempt"  # documented, nobody reached
    FACE_TO_FACE_VISIT = "face-to-face-visit"


class TcmPeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # the 30 days are over
    CANCELLED = "cancelled"  # opened by mistake (the discharge was entered in error)


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Holidays by year; the years listed are the years the calendar knows."""

    name: str
    holidays: Mapping[int, frozenset[date]] = field(default_factory=dict)

    def knows(self, year: int) -> bool:
        return year in self.holidays

    def is_business_day(self, day: date) -> bool:
        return day.weekday() not in _WEEKEND and day not in self.holidays.get(day.year, ())


@dataclass(frozen=True, slots=True)
class Deadline:
    """The last day something is due, and what its counting could not see."""

    due: date
    missing_calendar_years: tuple[int, ...] = ()

    def calendar_note(self, calendar: BusinessCalendar) -> str | None:
        if not self.missing_calendar_years:
            return None
        years = ", ".join(str(y) for y in self.missing_calendar_years)
        return f"no {calendar.name} calendar for {years}: only weekends were skipped"


@dataclass(frozen=True, slots=True)
class Discharge:
    """A qualifying discharge as read from another system: what opens a period."""

    discharge_key: str  # the discharge's identity on its server: "Encounter/123"
    patient_reference: str  # "Patient/123" on the EHR
    discharged_at: datetime
    setting: DischargeSetting
    disposition: str | None = None


@dataclass(slots=True)
class TcmPeriod:
    """The 30 days after one qualifying discharge of one patient.

    ``discharge_key`` is the discharge Encounter's identity on its server ("Encounter/123" or
    "identifier system|value"): opening a period twice for it finds the first one.
    """

    id: str
    patient_id: str
    discharge_key: str
    discharged_on: date  # in the practice's time zone
    status: TcmPeriodStatus = TcmPeriodStatus.OPEN
    setting: DischargeSetting | None = None
    disposition: str | None = None  # the discharge disposition code, as the EHR sent it
    complexity: TcmComplexity | None = None
    complexity_recorded_by: str | None = None  # care team member id
    practitioner_id: str | None = None  # who bills: the visit's physician/QHP
    contact_task_id: str | None = None
    visit_task_id: str | None = None
    opened_at: datetime | None = None

    @property
    def last_day(self) -> date:
        return self.discharged_on + timedelta(days=PERIOD_DAYS - 1)

    def covers(self, day: date) -> bool:
        return self.discharged_on <= day <= self.last_day


@dataclass(slots=True)
class TcmContact:
    """A contact, a documented unsuccessful attempt, or the face-to-face visit of a period."""

    id: str
    period_id: str
    patient_id: str
    kind: TcmContactKind
    occurred_on: date  # in the practice's time zone
    occurred_at: datetime | None = None
    staff_id: str | None = None
    mode: ContactMode | None = None
    minutes: int | None = None
    note: str | None = None  # stays local
    program: Program = Program.TCM  # its minutes are TCM's, never CCM's


@dataclass(frozen=True, slots=True)
class TcmCodeTerms:
    """What one TCM code asks, from the rule file."""

    code: str
    complexities: frozenset[TcmComplexity]
    contact_within_business_days: int
    visit_within_days: int
    # Documented timely unsuccessful attempts that stand in for the contact; None: they don't.
    attempts_for_contact: int | None = None


@dataclass(frozen=True, slots=True)
class TcmCodeVerdict:
    code: str
    earned: bool
    explanation: str


@dataclass(frozen=True, slots=True)
class TcmJudgement:
    """A period judged: at most one code earned, each code's verdict in plain words."""

    period_id: str
    patient_id: str
    contact_due: Deadline
    contact_met: bool
    contact_explanation: str
    visit_day: int | None  # calendar days after discharge; None without a visit
    date_of_service: date | None  # the visit
    verdicts: tuple[TcmCodeVerdict, ...]
    contact_ids: tuple[str, ...] = ()  # the contacts and visit the verdict rests on

    @property
    def earned(self) -> TcmCodeVerdict | None:
        return next((v for v in self.verdicts if v.earned), None)


# -- counting ----------------------------------------------------------------------------------


def _missing(calendar: BusinessCalendar, first: date, last: date) -> tuple[int, ...]:
    return tuple(y for y in range(first.year, last.year + 1) if not calendar.knows(y))


def contact_deadline(
    discharged_on: date, business_days: int, calendar: BusinessCalendar
) -> Deadline:
    """Business day ``business_days`` after the discharge day (business day 1 is the first
    business day after it)."""
    day = discharged_on
    counted = 0
    while counted < business_days:
        day += timedelta(days=1)
        if calendar.is_business_day(day):
            counted += 1
    return Deadline(day, _missing(calendar, discharged_on + timedelta(days=1), day))


def business_day_number(discharged_on: date, day: date, calendar: BusinessCalendar) -> int:
    """How many business days after the discharge day ``day`` is (0 on or before it; a weekend
    or holiday has the number of the business day before it)."""
    count = 0
    current = discharged_on
    while current < day:
        current += timedelta(days=1)
        if calendar.is_business_day(current):
            count += 1
    return count


def visit_deadline(discharged_on: date, days: int) -> Deadline:
    """The last day of a visit due within ``days`` calendar days, counted from the day after
    discharge."""
    return Deadline(discharged_on + timedelta(days=days))


def visit_day_number(discharged_on: date, day: date) -> int:
    return (day - discharged_on).days


# -- judging -----------------------------------------------------------------------------------


def _contact(
    period: TcmPeriod,
    contacts: Sequence[TcmContact],
    within: int,
    attempts_for_contact: int | None,
    calendar: BusinessCalendar,
) -> tuple[Deadline, bool, str, tuple[str, ...]]:
    due = contact_deadline(period.discharged_on, within, calendar)
    note = due.calendar_note(calendar)
    suffix = f" ({note})" if note else ""
    deadline_words = f"due by business day {within}, {due.due.isoformat()}"

    def when(day: date) -> str:
        number = business_day_number(period.discharged_on, day, calendar)
        if calendar.is_business_day(day):
            return f"business day {number} ({day.isoformat()})"
        return f"{day.isoformat()}, not a business day, after business day {number}"

    after_discharge = [c for c in contacts if c.occurred_on >= period.discharged_on]
    reached = sorted(
        (c for c in after_discharge if c.kind == TcmContactKind.INTERACTIVE_CONTACT),
        key=lambda c: (c.occurred_on, c.id),
    )
    timely = [c for c in reached if c.occurred_on <= due.due]
    if timely:
        first = timely[0]
        return (
            due,
            True,
            f"contact on {when(first.occurred_on)}; {deadline_words}{suffix}",
            (first.id,),
        )
    attempts = sorted(
        (
            c
            for c in after_discharge
            if c.kind == TcmContactKind.UNSUCCESSFUL_ATTEMPT and c.occurred_on <= due.due
        ),
        key=lambda c: (c.occurred_on, c.id),
    )
    if attempts_for_contact is not None and len(attempts) >= attempts_for_contact:
        used = attempts[:attempts_for_contact]
        return (
            due,
            True,
            f"{len(attempts)} documented unsuccessful attempts by {due.due.isoformat()} "
            f"stand in for the contact ({attempts_for_contact} needed){suffix}",
            tuple(c.id for c in used),
        )
    if reached:
        late = reached[0]
        reason = f"contact on {when(late.occurred_on)}; {deadline_words}"
    else:
        reason = f"no interactive contact; {deadline_words}"
    if attempts:
        needed = (
            "attempts do not stand in for it"
            if attempts_for_contact is None
            else f"{attempts_for_contact} needed"
        )
        reason += f"; {len(attempts)} timely unsuccessful attempt(s), {needed}"
    return due, False, reason + suffix, ()


def judge_period(
    period: TcmPeriod,
    contacts: Sequence[TcmContact],
    *,
    terms: Sequence[TcmCodeTerms],
    calendar: BusinessCalendar,
    billed_before: Iterable[TcmPeriod] = (),
) -> TcmJudgement:
    """Judge one period against the codes ``terms`` lists (most work first: 99496, 99495).

    ``billed_before``: earlier periods of the patient that earned a code (once per 30 days).
    Codes are judged whether or not the visit has happened yet: "no face-to-face visit" is a
    verdict of the day it is asked.
    """
    mine = [c for c in contacts if c.period_id == period.id]
    within = min((t.contact_within_business_days for t in terms), default=2)
    attempts_for = next((t.attempts_for_contact for t in terms), None)
    due, met, contact_words, contact_ids = _contact(period, mine, within, attempts_for, calendar)
    visits = sorted(
        (
            c
            for c in mine
            if c.kind == TcmContactKind.FACE_TO_FACE_VISIT and c.occurred_on >= period.discharged_on
        ),
        key=lambda c: (c.occurred_on, c.id),
    )
    visit = visits[0] if visits else None
    visit_day = None if visit is None else visit_day_number(period.discharged_on, visit.occurred_on)
    blocking = next(
        (
            earlier
            for earlier in sorted(billed_before, key=lambda p: p.discharged_on)
            if earlier.id != period.id
            and earlier.discharged_on < period.discharged_on
            and earlier.covers(period.discharged_on)
        ),
        None,
    )
    verdicts: list[TcmCodeVerdict] = []
    earned_one = False
    for term in terms:
        reason = _code_reason(period, term, met, contact_words, visit, visit_day, blocking)
        if reason is None and not earned_one:
            earned_one = True
            words = f"visit on day {visit_day}, within {term.visit_within_days}; {contact_words}"
            verdicts.append(TcmCodeVerdict(term.code, True, words))
        elif reason is None:
            verdicts.append(TcmCodeVerdict(term.code, False, f"{verdicts[-1].code} earned instead"))
        else:
            verdicts.append(TcmCodeVerdict(term.code, False, reason))
    ids = contact_ids + ((visit.id,) if visit is not None else ())
    return TcmJudgement(
        period_id=period.id,
        patient_id=period.patient_id,
        contact_due=due,
        contact_met=met,
        contact_explanation=contact_words,
        visit_day=visit_day,
        date_of_service=None if visit is None else visit.occurred_on,
        verdicts=tuple(verdicts),
        contact_ids=ids if earned_one else (),
    )


def _code_reason(
    period: TcmPeriod,
    term: TcmCodeTerms,
    contact_met: bool,
    contact_words: str,
    visit: TcmContact | None,
    visit_day: int | None,
    blocking: TcmPeriod | None,
) -> str | None:
    """Why ``term`` is not earned, or None when it is."""
    if blocking is not None:
        return (
            f"TCM already earned for the discharge of {blocking.discharged_on.isoformat()}: "
            "once per patient per 30 days"
        )
    if period.complexity is None:
        return "complexity not recorded: the care manager records moderate or high"
    if period.complexity not in term.complexities:
        allowed = " or ".join(sorted(c.value for c in term.complexities))
        return f"needs {allowed} complexity, recorded {period.complexity.value}"
    due = visit_deadline(period.discharged_on, term.visit_within_days).due
    if visit is None or visit_day is None:
        return f"no face-to-face visit; due by day {term.visit_within_days}, {due.isoformat()}"
    if visit_day > term.visit_within_days:
        return (
            f"visit on day {visit_day} ({visit.occurred_on.isoformat()}); "
            f"due by day {term.visit_within_days}, {due.isoformat()}"
        )
    if not contact_met:
        return contact_words
    return None


def judge_periods(
    periods: Sequence[TcmPeriod],
    contacts: Sequence[TcmContact],
    *,
    terms: Sequence[TcmCodeTerms],
    calendar: BusinessCalendar,
) -> list[TcmJudgement]:
    """Judge one patient's periods oldest first, each knowing which earlier ones earned a code."""
    earned: list[TcmPeriod] = []
    judged: list[TcmJudgement] = []
    for period in sorted(periods, key=lambda p: (p.discharged_on, p.id)):
        if period.status == TcmPeriodStatus.CANCELLED:
            continue
        judgement = judge_period(
            period, contacts, terms=terms, calendar=calendar, billed_before=earned
        )
        if judgement.earned is not None:
            earned.append(period)
        judged.append(judgement)
    return judged
