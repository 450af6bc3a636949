"""The monthly roll-up: one patient, one calendar month, one rule year -> billable codes.

How minutes are allocated (so the same minutes never count twice):

* each time entry carries its program and enrollment; its minutes can only count toward codes
  of that program, and only toward codes that count time of the entry's staff role;
* two codes that could take the same entry (same program and role) must exclude each other in
  the rule file (the loader enforces it), so at most one of them is kept;
* within a code, only the enrollments of one billing practitioner count (the one with the most
  minutes); minutes under other practitioners are named in the explanation, not counted.

Minutes belong to the calendar month in the practice's time zone. An entry that runs over a
month boundary counts the whole minutes that fall inside the month; the rest belong to the
neighbouring month. Enrollment periods and consent dates are whole local days (a consent dated
the 10th covers work from 00:00 on the 10th).

Why a code is not earned, in the order checked: no countable enrollment in its programs this
month; every such enrollment blocked (no consent, too few conditions, no billing practitioner);
too few minutes; no interactive contact where one is required; excluded by a code kept before
it. Codes kept earlier are those listed earlier in the rule file, after codes billed outside
the roll-up.

The judgement is made of public steps, so that the month of a whole practice judged from
minutes summed in SQL (``aggregate``) takes exactly the same ones: ``patient_facts`` (consent
day and blocker of each enrollment), ``evaluate_entry`` (one entry's counted minutes, or why
it counts for nothing) and ``judge_usable`` (codes earned from the usable minutes, exclusions
applied, and why the others are not).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from fhirbridge.billing.errors import RollUpInputError, RuleYearMismatch
from fhirbridge.billing.period import (
    Interval,
    entry_interval,
    local_midnight,
    month_interval,
    to_utc,
)
from fhirbridge.billing.result import BilledCode, EarnedCode, MonthlyResult, NotEarned, SetAside
from fhirbridge.billing.rules import (
    DeclaredCode,
    ExclusionScope,
    MonthPhase,
    RuleYear,
    TimedCode,
)
from fhirbridge.domain.enrollment import (
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
)
from fhirbridge.domain.people import StaffRole
from fhirbridge.domain.timeentry import TimeEntry, TimeEntryStatus

__all__ = [
    "COUNTING_STATUSES",
    "Candidate",
    "CountedMinutes",
    "MonthExplanation",
    "PatientFacts",
    "Usable",
    "check_billed_elsewhere",
    "check_one_patient",
    "display_order",
    "entry_order_key",
    "evaluate_entry",
    "explain_month",
    "judge_usable",
    "patient_facts",
    "phase_matches",
    "roll_up",
]

# Hold periods are not recorded on an enrollment, so an on-hold enrollment's dates still count.
COUNTING_STATUSES = frozenset(
    {EnrollmentStatus.ACTIVE, EnrollmentStatus.ON_HOLD, EnrollmentStatus.FINISHED}
)
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Usable:
    """An entry whose minutes may count this month, with the fields billing needs."""

    entry: TimeEntry
    enrollment: Enrollment
    role: StaffRole
    minutes: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """A code whose threshold is met, before exclusions between codes are applied."""

    code: str
    rule: TimedCode
    practitioner_id: str
    counted: tuple[Usable, ...]
    note: str | None

    @property
    def minutes(self) -> int:
        return sum(u.minutes for u in self.counted)


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """What one patient's enrollments and consents mean for a month, before any entry."""

    month: tuple[int, int]
    enrollments: dict[str, Enrollment]  # by id
    in_month: frozenset[str]  # ids of the enrollments overlapping the month
    consent_day: dict[str, date | str]  # the day minutes count from, or why none do
    blockers: dict[str, str | None]  # why an enrollment's minutes count for nothing


@dataclass(frozen=True, slots=True)
class CountedMinutes:
    """An entry's minutes that count this month toward the codes of its program."""

    entry_id: str
    enrollment_id: str
    program: Program
    staff_role: StaffRole
    minutes: int


@dataclass(frozen=True, slots=True)
class MonthExplanation:
    """A patient's month entry by entry: the result, and every entry whose minutes count."""

    result: MonthlyResult
    counted: tuple[CountedMinutes, ...]


def roll_up(
    *,
    rules: RuleYear,
    month: tuple[int, int],
    patient_id: str,
    enrollments: Sequence[Enrollment],
    consents: Sequence[ProgramConsent],
    entries: Sequence[TimeEntry],
    tz: ZoneInfo,
    billed_elsewhere: Sequence[BilledCode] = (),
) -> MonthlyResult:
    """Which codes one patient's month earns under ``rules``, and why the others do not.

    ``entries`` may include entries of other months; only minutes inside ``month`` count.
    """
    return explain_month(
        rules=rules,
        month=month,
        patient_id=patient_id,
        enrollments=enrollments,
        consents=consents,
        entries=entries,
        tz=tz,
        billed_elsewhere=billed_elsewhere,
    ).result


def explain_month(
    *,
    rules: RuleYear,
    month: tuple[int, int],
    patient_id: str,
    enrollments: Sequence[Enrollment],
    consents: Sequence[ProgramConsent],
    entries: Sequence[TimeEntry],
    tz: ZoneInfo,
    billed_elsewhere: Sequence[BilledCode] = (),
) -> MonthExplanation:
    """``roll_up``, and the minutes each counting entry contributes (oldest entry first)."""
    facts = patient_facts(rules, month, enrollments, consents)
    check_one_patient(patient_id, enrollments, consents, entries)
    check_billed_elsewhere(rules, billed_elsewhere)
    month_span = month_interval(*month, tz)
    usable: list[Usable] = []
    set_aside: list[SetAside] = []
    for entry in sorted(entries, key=lambda e: entry_order_key(e, tz)):
        outcome = evaluate_entry(entry, rules, facts, month_span, tz)
        if isinstance(outcome, Usable):
            usable.append(outcome)
        elif outcome is not None:
            set_aside.append(SetAside(entry.id, outcome))
    referenced = {u.enrollment.id for u in usable} | {
        e.enrollment_id for e in entries if e.enrollment_id in facts.enrollments
    }
    result = judge_usable(
        rules,
        facts,
        patient_id=patient_id,
        usable=usable,
        referenced=referenced,
        billed_elsewhere=billed_elsewhere,
        set_aside=set_aside,
    )
    counted = tuple(
        CountedMinutes(u.entry.id, u.enrollment.id, u.enrollment.program, u.role, u.minutes)
        for u in usable
    )
    return MonthExplanation(result, counted)


def patient_facts(
    rules: RuleYear,
    month: tuple[int, int],
    enrollments: Sequence[Enrollment],
    consents: Sequence[ProgramConsent],
) -> PatientFacts:
    """Step 1: each enrollment's consent day and blocker for the month.

    Raises RuleYearMismatch when ``rules`` are of another year than ``month``.
    """
    year, number = month
    if rules.rule_year != year:
        raise RuleYearMismatch(rule_year=rules.rule_year, month=month)
    first = date(year, number, 1)
    last = date(year + number // 12, number % 12 + 1, 1) - _ONE_DAY
    consent_day = {e.id: _consent_day(e, consents, last) for e in enrollments}
    return PatientFacts(
        month=month,
        enrollments={e.id: e for e in enrollments},
        in_month=frozenset(e.id for e in enrollments if _overlaps(e, first, last)),
        consent_day=consent_day,
        blockers={e.id: _blocker(rules, e, consent_day[e.id]) for e in enrollments},
    )


def judge_usable(
    rules: RuleYear,
    facts: PatientFacts,
    *,
    patient_id: str,
    usable: Sequence[Usable],
    referenced: Collection[str],
    billed_elsewhere: Sequence[BilledCode] = (),
    set_aside: Sequence[SetAside] = (),
    codes: Sequence[tuple[str, TimedCode]] | None = None,
) -> MonthlyResult:
    """Step 3: the codes earned from the usable minutes, and why the others are not.

    ``referenced``: ids of enrollments the month's entries name (they are judged even when
    they do not overlap the month). ``codes``: the timed codes worth judging, in the rule
    file's order (default: all of them).
    """
    month = facts.month
    in_play = [
        e for e in facts.enrollments.values() if e.id in facts.in_month or e.id in referenced
    ]
    candidates: list[Candidate] = []
    not_earned: dict[str, str] = {}
    for code, rule in rules.timed_codes() if codes is None else codes:
        relevant = [
            e for e in in_play if e.program in rule.programs and phase_matches(rule, e, month)
        ]
        if not relevant:
            continue
        judged = _judge_code(code, rule, relevant, facts.blockers, usable, month)
        if isinstance(judged, str):
            not_earned[code] = judged
        else:
            candidates.append(judged)
    earned = _resolve(rules, candidates, billed_elsewhere, not_earned)
    order = display_order(rules)
    return MonthlyResult(
        patient_id=patient_id,
        month=month,
        rule_year=rules.rule_year,
        earned=tuple(sorted(earned, key=lambda e: order[e.code])),
        not_earned=tuple(
            NotEarned(code, reason)
            for code, reason in sorted(not_earned.items(), key=lambda item: order[item[0]])
        ),
        set_aside=tuple(set_aside),
    )


def check_one_patient(
    patient_id: str,
    enrollments: Sequence[Enrollment],
    consents: Sequence[ProgramConsent],
    entries: Sequence[TimeEntry],
) -> None:
    for kind, items in (("enrollment", enrollments), ("consent", consents), ("entry", entries)):
        for item in items:
            # An entry without a patient is set aside later; it cannot belong to another one.
            if item.patient_id is not None and item.patient_id != patient_id:
                raise RollUpInputError(
                    f"{kind} {item.id} belongs to another patient", item_id=item.id
                )


def check_billed_elsewhere(rules: RuleYear, billed: Sequence[BilledCode]) -> None:
    for item in billed:
        rule = rules.codes.get(item.code)
        if not isinstance(rule, DeclaredCode):
            raise RollUpInputError(
                f"{item.code} is not a CY{rules.rule_year} code billed outside the roll-up",
                item_id=item.code,
            )


def _overlaps(enrollment: Enrollment, first: date, last: date) -> bool:
    return enrollment.start <= last and (enrollment.end is None or enrollment.end >= first)


def _consent_day(
    enrollment: Enrollment, consents: Sequence[ProgramConsent], month_end: date
) -> date | str:
    """The earliest active consent's date, or why there is none usable this month."""
    dates = sorted(
        c.given_on
        for c in consents
        if c.enrollment_id == enrollment.id and c.status == ConsentStatus.ACTIVE
    )
    if not dates:
        return "no consent on file"
    if dates[0] > month_end:
        return f"consent dated {dates[0].isoformat()}, after this month"
    return dates[0]


def _blocker(rules: RuleYear, enrollment: Enrollment, consent: date | str) -> str | None:
    program_rule = rules.programs.get(enrollment.program)
    if program_rule is None:
        return f"CY{rules.rule_year} rules do not cover {enrollment.program.value}"
    if program_rule.consent_required and isinstance(consent, str):
        return consent
    if len(enrollment.conditions) < program_rule.min_conditions:
        return (
            f"{len(enrollment.conditions)} of {program_rule.min_conditions} chronic conditions "
            "on the enrollment"
        )
    if not enrollment.billing_practitioner_id:
        return "no billing practitioner on the enrollment"
    return None


def entry_order_key(entry: TimeEntry, tz: ZoneInfo) -> tuple[datetime, str]:
    """The order entries are judged and listed in: oldest first (UTC), ties by id."""
    start = to_utc(entry.start, tz) if entry.start is not None else datetime.min.replace(tzinfo=UTC)
    return start, entry.id


def evaluate_entry(
    entry: TimeEntry,
    rules: RuleYear,
    facts: PatientFacts,
    month_span: Interval,
    tz: ZoneInfo,
) -> Usable | str | None:
    """Step 2: the entry's counted minutes, the reason it counts for nothing, or None when it
    has nothing to do with this month."""
    month, enrollments = facts.month, facts.enrollments
    blockers, consent_day = facts.blockers, facts.consent_day
    if entry.start is None:
        return "incomplete entry: no start time"
    span = entry_interval(entry, tz)
    in_month = span.clip(month_span) if span else None
    if in_month is None and not month_span.contains(to_utc(entry.start, tz)):
        return None
    if entry.status == TimeEntryStatus.ENTERED_IN_ERROR:
        return "entered in error"
    if entry.status == TimeEntryStatus.IN_PROGRESS:
        return "timer still running"
    if span is None:
        return "no duration recorded"
    if entry.patient_id is None:
        return "incomplete entry: no patient"
    if entry.enrollment_id is None:
        return "incomplete entry: no enrollment"
    if entry.program is None:
        return "incomplete entry: no program"
    role = entry.staff_role
    if role is None:
        return "incomplete entry: no staff role"
    enrollment = enrollments.get(entry.enrollment_id)
    if enrollment is None:
        return f"enrollment {entry.enrollment_id} not found"
    if enrollment.program != entry.program:
        return (
            f"program {entry.program.value} does not match enrollment {enrollment.id} "
            f"({enrollment.program.value})"
        )
    if enrollment.status not in COUNTING_STATUSES:
        return f"enrollment {enrollment.id} is {enrollment.status.value}"
    if in_month is None:
        return "less than a minute in this month"
    enrolled = Interval(
        local_midnight(enrollment.start, tz),
        local_midnight(enrollment.end, tz) + _ONE_DAY if enrollment.end else month_span.end,
    )
    counted = in_month.clip(enrolled)
    if counted is None:
        if enrollment.end is not None and in_month.start >= enrolled.end:
            return f"after enrollment {enrollment.id} ended on {enrollment.end.isoformat()}"
        return f"before enrollment {enrollment.id} started on {enrollment.start.isoformat()}"
    blocker = blockers[enrollment.id]
    if blocker is not None:
        return blocker
    consent = consent_day[enrollment.id]
    if isinstance(consent, date):
        after_consent = counted.clip(Interval(local_midnight(consent, tz), month_span.end))
        if after_consent is None:
            return f"before consent on {consent.isoformat()}"
        counted = after_consent
    if counted.whole_minutes == 0:
        return "less than a minute in this month"
    if not any(
        entry.program in rule.programs
        and role in rule.counts_time_of
        and phase_matches(rule, enrollment, month)
        for _, rule in rules.timed_codes()
    ):
        return f"no {entry.program.value} code counts time of {role.value}"
    return Usable(entry, enrollment, role, counted.whole_minutes)


def phase_matches(rule: TimedCode, enrollment: Enrollment, month: tuple[int, int]) -> bool:
    if rule.months == MonthPhase.ANY:
        return True
    first = (enrollment.start.year, enrollment.start.month) == month
    return first == (rule.months == MonthPhase.FIRST)


def _judge_code(
    code: str,
    rule: TimedCode,
    relevant: list[Enrollment],
    blockers: dict[str, str | None],
    usable: Sequence[Usable],
    month: tuple[int, int],
) -> Candidate | str:
    countable = sorted((e for e in relevant if e.status in COUNTING_STATUSES), key=lambda e: e.id)
    if not countable:
        names = " or ".join(p.value for p in rule.programs)
        return f"no active {names} enrollment this month"
    open_ids = {e.id for e in countable if blockers[e.id] is None}
    if not open_ids:
        return blockers[countable[0].id] or ""
    by_practitioner: dict[str, list[Usable]] = defaultdict(list)
    for item in usable:
        if (
            item.enrollment.id in open_ids
            and item.role in rule.counts_time_of
            and phase_matches(rule, item.enrollment, month)
        ):
            by_practitioner[item.enrollment.billing_practitioner_id or ""].append(item)
    if by_practitioner:
        practitioner = min(
            by_practitioner, key=lambda p: (-sum(u.minutes for u in by_practitioner[p]), p)
        )
    else:
        practitioner = min(e.billing_practitioner_id or "" for e in countable if e.id in open_ids)
    counted = tuple(by_practitioner.get(practitioner, ()))
    minutes = sum(u.minutes for u in counted)
    others = sum(
        u.minutes for p, items in by_practitioner.items() if p != practitioner for u in items
    )
    elsewhere = (
        f"{others} minutes under other practitioners not counted (one practitioner bills a month)"
        if others
        else None
    )
    if minutes < rule.threshold_minutes:
        reason = f"{minutes} of {rule.threshold_minutes} minutes"
        return f"{reason}; {elsewhere}" if elsewhere else reason
    if rule.interactive_contact_required and not any(u.entry.interactive for u in counted):
        return "no real-time interactive contact this month"
    return Candidate(code, rule, practitioner, counted, elsewhere)


def _resolve(
    rules: RuleYear,
    candidates: list[Candidate],
    billed_elsewhere: Sequence[BilledCode],
    not_earned: dict[str, str],
) -> list[EarnedCode]:
    kept: list[tuple[str, str]] = [(b.code, b.practitioner_id) for b in billed_elsewhere]
    earned: list[EarnedCode] = []
    for candidate in candidates:
        reason = _excluded_by(rules, candidate, kept)
        if reason is not None:
            not_earned[candidate.code] = reason
            continue
        kept.append((candidate.code, candidate.practitioner_id))
        entry_ids = tuple(u.entry.id for u in candidate.counted)
        earned.append(
            EarnedCode(
                candidate.code,
                1,
                candidate.practitioner_id,
                candidate.minutes,
                entry_ids,
                candidate.note,
            )
        )
        add_on = candidate.rule.add_on
        if add_on is None:
            continue
        beyond = candidate.minutes - candidate.rule.threshold_minutes
        units = beyond // add_on.increment_minutes
        if units == 0:
            not_earned[add_on.code] = f"{beyond} of the next {add_on.increment_minutes} minutes"
            continue
        note = None
        cap = add_on.max_units_per_month
        if cap is not None and units > cap:
            unbilled = beyond - cap * add_on.increment_minutes
            note = f"capped at {cap} units a month; {unbilled} minutes beyond the cap"
            units = cap
        earned.append(
            EarnedCode(
                add_on.code, units, candidate.practitioner_id, candidate.minutes, entry_ids, note
            )
        )
    return earned


def _excluded_by(rules: RuleYear, candidate: Candidate, kept: list[tuple[str, str]]) -> str | None:
    for code, practitioner in kept:
        scope = rules.conflicts(candidate.code, code)
        if scope == ExclusionScope.PATIENT:
            return f"excluded by {code} for the same patient"
        if scope == ExclusionScope.SAME_PRACTITIONER and practitioner == candidate.practitioner_id:
            return f"excluded by {code} from the same practitioner"
    return None


def display_order(rules: RuleYear) -> Mapping[str, int]:
    """Where each code (add-ons after their base code) comes in the rule file, for sorting.

    Worked out once per rule year (it was once per patient, 10 000 times in a report)."""
    known = _DISPLAY_ORDERS.get(id(rules))
    if known is not None and known[0] is rules:
        return known[1]
    order = _display_order(rules)
    if len(_DISPLAY_ORDERS) >= 16:
        _DISPLAY_ORDERS.clear()
    # The rules are kept alive beside their order, so their id is not reused while cached.
    _DISPLAY_ORDERS[id(rules)] = (rules, order)
    return order


_DISPLAY_ORDERS: dict[int, tuple[RuleYear, Mapping[str, int]]] = {}


def _display_order(rules: RuleYear) -> Mapping[str, int]:
    order: dict[str, int] = {}
    for code, rule in rules.codes.items():
        order.setdefault(code, len(order))
        if isinstance(rule, TimedCode) and rule.add_on is not None:
            order.setdefault(rule.add_on.code, len(order))
    return MappingProxyType(order)
