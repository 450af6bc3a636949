"""A practice's month of billing, with the time entries pre-aggregated in SQL.

``roll_up`` judges one patient from every one of their time entries. For a month-end run over a
whole practice that means loading every entry into Python; here the database does the per-entry
work instead and Python sees one small group per (patient, enrollment, program, staff role,
staff member):

1. the month is the calendar month in the practice's time zone, turned into UTC bounds;
2. each enrollment gets its counting window in SQL: the month, cut to the enrollment's days
   and to its earliest active consent (local midnights come from a small table of the month's
   days, built here from the time zone, so SQLite needs no time-zone support);
3. each entry's minutes are clipped to its enrollment's window per row (an entry running over
   the month boundary counts the whole minutes inside the month) and summed per group;
4. ``roll_up_summary`` judges each patient from those groups with the same rules, in the same
   order and with the same words as ``roll_up``, which a property test checks.

What "the same inputs" means: ``roll_up`` given the patient's enrollments, consents and the time
entries of the month (those that start in it or whose minutes overlap it). The summary path
does not list set-aside entries (``MonthlyResult.set_aside`` is empty): that explanation is
per entry, and ``roll_up`` gives it for one patient on demand.

Timestamps are compared as whole microseconds since the epoch (``_EpochMicros``), exact on both
backends, so rounding to whole minutes matches ``Interval.whole_minutes``. The query's layers
are ``MATERIALIZED`` CTEs (SQLite 3.35+, PostgreSQL 12+).

Judging reuses ``rollup``'s own steps (consent day, blockers, per-code judgement, exclusions,
display order) rather than a copy of them, so the two paths can differ only in how entries
become minutes, which is what the equivalence test exercises.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import SQLCoreOperations
from sqlalchemy.sql.functions import FunctionElement

from fhirbridge.billing.errors import RollUpInputError, RuleYearMismatch
from fhirbridge.billing.period import local_midnight, month_interval
from fhirbridge.billing.result import BilledCode, EarnedCode, MonthlyResult, NotEarned
from fhirbridge.billing.rollup import (
    _COUNTABLE,
    _blocker,
    _Candidate,
    _check_billed_elsewhere,
    _check_one_patient,
    _consent_day,
    _display_order,
    _judge_code,
    _overlaps,
    _phase_matches,
    _resolve,
    _Usable,
)
from fhirbridge.billing.rules import MonthPhase, RuleYear
from fhirbridge.domain.enrollment import (
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    RiskLevel,
)
from fhirbridge.domain.people import StaffRole
from fhirbridge.domain.timeentry import TimeEntry, TimeEntryStatus
from fhirbridge.persistence.tables import EnrollmentRow, ProgramConsentRow, TimeEntryRow

__all__ = [
    "MinutesGroup",
    "PracticeMonth",
    "aggregate_month",
    "month_days",
    "roll_up_summary",
    "summarize_minutes",
]

MINUTE_US = 60_000_000
DAY_US = 86_400_000_000
# Separators inside the aggregated "start,id" lists: control characters no id contains.
_FIELD = "\x1f"
_ITEM = "\x1e"
_IN_CHUNK = 900


class MinutesGroup(NamedTuple):
    """One patient's time entries of the month that share enrollment, program, role and staff.

    ``countable`` groups hold the entries whose minutes may count (finished, complete, inside
    the enrollment's window after consent, at least a whole minute); the others only say that
    the patient's entries this month name the enrollment, which puts it in the explanation.
    ``entries`` are (start in UTC microseconds since the epoch, entry id), in no set order;
    earned codes list them oldest first. They are read from ``listed`` (as SQL aggregated
    them) only when asked for: most groups of a month never are. (A named tuple: a practice's
    month makes tens of thousands of these, and a frozen dataclass is several times slower to
    build.)
    """

    patient_id: str
    enrollment_id: str
    program: Program | None
    staff_role: StaffRole | None
    staff_id: str | None
    countable: bool
    minutes: int = 0
    interactive: bool = False
    listed: str = ""

    @property
    def entries(self) -> tuple[tuple[int, str], ...]:
        if not self.listed:
            return ()
        pairs = (item.split(_FIELD, 1) for item in self.listed.split(_ITEM))
        return tuple([(int(start), entry_id) for start, entry_id in pairs])


@dataclass(frozen=True, slots=True)
class PracticeMonth:
    """A month of a practice: one result per patient with an enrollment in play, by patient."""

    month: tuple[int, int]
    results: tuple[MonthlyResult, ...]
    # (patient id, code) -> the program the code was judged under, for per-program reports
    programs: Mapping[tuple[str, str], Program] = field(default_factory=dict)


def month_days(month: tuple[int, int]) -> tuple[date, date]:
    """The first and the last day of a calendar month."""
    year, number = month
    following = date(year + number // 12, number % 12 + 1, 1)
    return date(year, number, 1), following - timedelta(days=1)


# -- SQL ---------------------------------------------------------------------------------


class _EpochMicros(FunctionElement[int]):
    """Whole microseconds since 1970-01-01 UTC of a ``UtcDateTime`` column."""

    type = BigInteger()
    name = "epoch_micros"
    inherit_cache = True


@compiles(_EpochMicros, "sqlite")
def _epoch_micros_sqlite(element: _EpochMicros, compiler: SQLCompiler, **kw: Any) -> str:
    # UtcDateTime keeps UTC text "YYYY-MM-DD HH:MM:SS.ffffff" (SQLAlchemy's SQLite format).
    column = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(strftime('%s', {column}) AS INTEGER) * 1000000"
        f" + CAST(substr({column}, 21, 6) AS INTEGER))"
    )


@compiles(_EpochMicros, "postgresql")
def _epoch_micros_postgresql(element: _EpochMicros, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _big(value: int) -> ColumnElement[int]:
    return literal(value, BigInteger)


def _later(a: ColumnElement[int], b: ColumnElement[int]) -> ColumnElement[int]:
    return case((a > b, a), else_=b)


def _earlier(a: ColumnElement[int], b: ColumnElement[int]) -> ColumnElement[int]:
    return case((a < b, a), else_=b)


def _clamped(day: SQLCoreOperations[Any], low: date, high: date) -> ColumnElement[Any]:
    return case((day < low, literal(low, Date)), (day > high, literal(high, Date)), else_=day)


def _windows(month: tuple[int, int], tz: ZoneInfo) -> Select[*tuple[Any, ...]]:
    """Per enrollment: the span of this month its entries may count in, in UTC microseconds.

    The same bounds ``roll_up`` uses: from the later of the month's start, the local midnight
    the enrollment starts and that of its earliest active consent (when dated within the month);
    to the earlier of the month's end and the end day's local midnight plus 24 hours.
    """
    first, last = month_days(month)
    span = month_interval(*month, tz)
    month_start, month_end = _big(_micros(span.start)), _big(_micros(span.end))
    # Days outside [first - 2, last + 1] are clamped into it: from there on every bound falls
    # wholly before or after the month, whatever the daylight-saving changes around it.
    low, high = first - timedelta(days=2), last + timedelta(days=1)
    days = union_all(
        *(
            select(
                literal(day, Date).label("day"),
                _big(_micros(local_midnight(day, tz))).label("starts_us"),
            )
            for day in (low + timedelta(days=n) for n in range((high - low).days + 1))
        )
    ).cte("month_days")
    starts, ends, consented = days.alias("starts"), days.alias("ends"), days.alias("consented")
    consent = (
        select(
            ProgramConsentRow.enrollment_id,
            func.min(ProgramConsentRow.given_on).label("given_on"),
        )
        .where(ProgramConsentRow.status == ConsentStatus.ACTIVE.value)
        .group_by(ProgramConsentRow.enrollment_id)
        .subquery("first_consent")
    )
    enrolled_to = case(
        (EnrollmentRow.end_on.is_(None), month_end), else_=ends.c.starts_us + _big(DAY_US)
    )
    # A consent dated after the month blocks the enrollment (Python says so); no clip then.
    consent_from = case(
        (consent.c.given_on <= literal(last, Date), consented.c.starts_us), else_=starts.c.starts_us
    )
    return (
        select(
            EnrollmentRow.id,
            EnrollmentRow.patient_id,
            EnrollmentRow.program,
            EnrollmentRow.status,
            _later(_later(month_start, starts.c.starts_us), consent_from).label("from_us"),
            _earlier(month_end, enrolled_to).label("to_us"),
        )
        .join(starts, starts.c.day == _clamped(EnrollmentRow.start_on, low, high))
        .outerjoin(ends, ends.c.day == _clamped(EnrollmentRow.end_on, low, high))
        .outerjoin(consent, consent.c.enrollment_id == EnrollmentRow.id)
        .outerjoin(consented, consented.c.day == _clamped(consent.c.given_on, low, high))
    )


def _minutes_statement(
    month: tuple[int, int], tz: ZoneInfo, patient_ids: Sequence[str] | None
) -> Select[Any]:
    span = month_interval(*month, tz)
    month_start = _big(_micros(span.start))
    # MATERIALIZED keeps SQLite from inlining the layers into one another, which would
    # compute every timestamp a dozen times per row.
    windows = _windows(month, tz).cte("windows").prefix_with("MATERIALIZED")
    entry = TimeEntryRow
    start_us = _EpochMicros(entry.started_at)
    timed = (
        select(
            entry.id,
            entry.patient_id,
            entry.enrollment_id,
            entry.program,
            entry.staff_role,
            entry.staff_id,
            entry.status,
            entry.interactive,
            start_us.label("start_us"),
            # Recorded minutes win over the end time, as in ``entry_interval``.
            case(
                (
                    entry.minutes.is_not(None),
                    start_us + cast(entry.minutes, BigInteger) * _big(MINUTE_US),
                ),
                else_=_EpochMicros(entry.ended_at),
            ).label("end_us"),
        )
        .where(
            entry.patient_id.is_not(None),
            entry.started_at.is_not(None),
            entry.started_at < span.end,
            *([entry.patient_id.in_(list(patient_ids))] if patient_ids is not None else []),
        )
        .cte("timed")
        .prefix_with("MATERIALIZED")
    )
    counted_us = _earlier(timed.c.end_us, windows.c.to_us) - _later(
        timed.c.start_us, windows.c.from_us
    )
    per_entry = (
        select(
            timed.c.id,
            timed.c.patient_id,
            timed.c.enrollment_id,
            timed.c.program,
            timed.c.staff_role,
            timed.c.staff_id,
            timed.c.start_us,
            timed.c.interactive,
            counted_us.label("counted_us"),
            case(
                (
                    and_(
                        timed.c.status == TimeEntryStatus.FINISHED.value,
                        timed.c.end_us.is_not(None),
                        timed.c.program.is_not(None),
                        timed.c.staff_role.is_not(None),
                        timed.c.program == windows.c.program,
                        windows.c.status.in_([s.value for s in _COUNTABLE]),
                        counted_us >= _big(MINUTE_US),
                    ),
                    1,
                ),
                else_=0,
            ).label("countable"),
        )
        .join(
            windows,
            and_(windows.c.id == timed.c.enrollment_id, windows.c.patient_id == timed.c.patient_id),
        )
        .where(or_(timed.c.start_us >= month_start, timed.c.end_us > month_start))
        .cte("month_entries")
        .prefix_with("MATERIALIZED")
    )
    countable = per_entry.c.countable == 1
    keys = (
        per_entry.c.patient_id,
        per_entry.c.enrollment_id,
        per_entry.c.program,
        per_entry.c.staff_role,
        per_entry.c.staff_id,
        per_entry.c.countable,
    )
    listed = cast(per_entry.c.start_us, String) + _FIELD + per_entry.c.id
    return (
        select(
            *keys,
            func.sum(case((countable, per_entry.c.counted_us // _big(MINUTE_US)), else_=0)).label(
                "minutes"
            ),
            func.max(
                case((and_(countable, per_entry.c.interactive.is_(true())), 1), else_=0)
            ).label("interactive"),
            func.aggregate_strings(case((countable, listed), else_=None), _ITEM).label("entries"),
        )
        .group_by(*keys)
        .order_by(*keys)
    )


_PROGRAMS = {p.value: p for p in Program}
_ROLES = {r.value: r for r in StaffRole}


def summarize_minutes(
    session: Session,
    *,
    month: tuple[int, int],
    tz: ZoneInfo,
    patient_ids: Sequence[str] | None = None,
) -> list[MinutesGroup]:
    """The month's time entries of every patient (or of ``patient_ids``), grouped in SQL."""
    # Unpacked as tuples: attribute access on tens of thousands of rows shows in the timings.
    rows = session.execute(_minutes_statement(month, tz, patient_ids))
    return [
        MinutesGroup(
            patient,
            enrollment,
            _PROGRAMS.get(program),
            _ROLES.get(role),
            staff,
            bool(countable),
            int(minutes or 0),
            bool(interactive),
            listed or "",
        )
        for patient, enrollment, program, role, staff, countable, minutes, interactive, listed in (
            rows
        )
    ]


def _load_enrollments(
    session: Session,
    month: tuple[int, int],
    patient_ids: Sequence[str] | None,
    named: Iterable[str],
) -> tuple[list[Enrollment], list[ProgramConsent]]:
    """Enrollments in play this month (overlapping it, or named by its entries) and their
    active consents."""
    first, last = month_days(month)
    table = EnrollmentRow.__table__
    overlapping = and_(
        EnrollmentRow.start_on <= last,
        or_(EnrollmentRow.end_on.is_(None), EnrollmentRow.end_on >= first),
    )
    scope = [EnrollmentRow.patient_id.in_(list(patient_ids))] if patient_ids is not None else []
    enrollments = {e.id: e for e in _enrollments(session, select(table).where(overlapping, *scope))}
    missing = sorted(set(named) - enrollments.keys())
    for chunk in _chunks(missing):
        statement = select(table).where(EnrollmentRow.id.in_(chunk))
        enrollments.update((e.id, e) for e in _enrollments(session, statement))
    active = ProgramConsentRow.status == ConsentStatus.ACTIVE.value
    consents: list[ProgramConsent] = []
    if patient_ids is None and not missing:
        # The whole practice: one pass over the active consents of overlapping enrollments.
        statement = (
            select(ProgramConsentRow.__table__)
            .join(EnrollmentRow, EnrollmentRow.id == ProgramConsentRow.enrollment_id)
            .where(active, overlapping)
        )
        consents.extend(_consents(session, statement))
    else:
        for chunk in _chunks(sorted(enrollments)):
            statement = select(ProgramConsentRow.__table__).where(
                ProgramConsentRow.enrollment_id.in_(chunk), active
            )
            consents.extend(_consents(session, statement))
    return list(enrollments.values()), consents


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    return (ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK))


def _enrollments(session: Session, statement: Select[Any]) -> list[Enrollment]:
    return [
        Enrollment(
            id=row.id,
            patient_id=row.patient_id,
            program=_PROGRAMS[row.program],
            status=EnrollmentStatus(row.status),
            start=row.start_on,
            end=row.end_on,
            conditions=list(row.conditions),
            risk_level=RiskLevel(row.risk_level) if row.risk_level else None,
            care_manager_id=row.care_manager_id,
            billing_practitioner_id=row.billing_practitioner_id,
        )
        for row in session.execute(statement)
    ]


def _consents(session: Session, statement: Select[Any]) -> list[ProgramConsent]:
    # The scope code plays no part in billing, so it is not read.
    return [
        ProgramConsent(
            id=row.id,
            patient_id=row.patient_id,
            enrollment_id=row.enrollment_id,
            program=_PROGRAMS[row.program],
            status=ConsentStatus(row.status),
            given_on=row.given_on,
            method=ConsentMethod(row.method),
            recorded_by_id=row.recorded_by_id,
        )
        for row in session.execute(statement)
    ]


def aggregate_month(
    session: Session,
    *,
    rules: RuleYear,
    month: tuple[int, int],
    tz: ZoneInfo,
    patient_ids: Sequence[str] | None = None,
    billed_elsewhere: Mapping[str, Sequence[BilledCode]] | None = None,
) -> PracticeMonth:
    """Roll up ``month`` for every patient of the database (or ``patient_ids``).

    ``billed_elsewhere`` maps a patient id to the codes billed outside the roll-up (APCM, TCM).
    """
    judge = _MonthJudge(rules, month)
    groups = summarize_minutes(session, month=month, tz=tz, patient_ids=patient_ids)
    enrollments, consents = _load_enrollments(
        session, month, patient_ids, {g.enrollment_id for g in groups}
    )
    by_patient: dict[str, tuple[list[Enrollment], list[ProgramConsent], list[MinutesGroup]]]
    by_patient = defaultdict(lambda: ([], [], []))
    for enrollment in enrollments:
        by_patient[enrollment.patient_id][0].append(enrollment)
    for consent in consents:
        by_patient[consent.patient_id][1].append(consent)
    for group in groups:
        by_patient[group.patient_id][2].append(group)
    elsewhere = billed_elsewhere or {}
    results = []
    programs: dict[tuple[str, str], Program] = {}
    for patient_id in sorted(by_patient):
        patient_enrollments, patient_consents, patient_groups = by_patient[patient_id]
        if not patient_enrollments:
            continue
        result, judged = judge.judge(
            patient_id,
            patient_enrollments,
            patient_consents,
            patient_groups,
            elsewhere.get(patient_id, ()),
        )
        results.append(result)
        programs.update(((patient_id, code), program) for code, program in judged.items())
    return PracticeMonth(month=month, results=tuple(results), programs=programs)


# -- the summary-level roll-up -----------------------------------------------------------


def roll_up_summary(
    *,
    rules: RuleYear,
    month: tuple[int, int],
    patient_id: str,
    enrollments: Sequence[Enrollment],
    consents: Sequence[ProgramConsent],
    groups: Sequence[MinutesGroup],
    tz: ZoneInfo,
    billed_elsewhere: Sequence[BilledCode] = (),
) -> MonthlyResult:
    """``roll_up`` over grouped minutes: the same codes, units, practitioners, minutes, entry
    ids and reasons; no set-aside list.

    ``tz`` is unused here (the groups were clipped to the month already) and kept so the two
    functions take the same arguments.
    """
    del tz
    return _MonthJudge(rules, month).patient(
        patient_id, enrollments, consents, groups, billed_elsewhere
    )


class _MonthJudge:
    """What ``roll_up`` works out per call, worked out once for a month of many patients."""

    def __init__(self, rules: RuleYear, month: tuple[int, int]) -> None:
        if rules.rule_year != month[0]:
            raise RuleYearMismatch(rule_year=rules.rule_year, month=month)
        self.rules = rules
        self.month = month
        self.first, self.last = month_days(month)
        self.timed = rules.timed_codes()
        self.order = _display_order(rules)
        # Each timed code and add-on -> the programs its rule lists, in the file's order.
        self.programs_listed: dict[str, tuple[Program, ...]] = {}
        for code, rule in self.timed:
            self.programs_listed[code] = rule.programs
            if rule.add_on is not None:
                self.programs_listed.setdefault(rule.add_on.code, rule.programs)
        self.codes_of: dict[Program, set[int]] = defaultdict(set)
        for index, (_, rule) in enumerate(self.timed):
            for program in rule.programs:
                self.codes_of[program].add(index)
        # (program, role, phase) under which some code counts an entry's minutes.
        self.counting = {
            (program, role, rule.months)
            for _, rule in self.timed
            for program in rule.programs
            for role in rule.counts_time_of
        }

    def _program(self, code: str, candidates: set[Program | None]) -> Program:
        listed = self.programs_listed[code]
        return next((p for p in listed if p in candidates), listed[0])

    def _some_code_counts(self, program: Program, role: StaffRole, enrollment: Enrollment) -> bool:
        first = (enrollment.start.year, enrollment.start.month) == self.month
        phase = MonthPhase.FIRST if first else MonthPhase.LATER
        counting = self.counting
        return (program, role, MonthPhase.ANY) in counting or (program, role, phase) in counting

    def patient(
        self,
        patient_id: str,
        enrollments: Sequence[Enrollment],
        consents: Sequence[ProgramConsent],
        groups: Sequence[MinutesGroup],
        billed_elsewhere: Sequence[BilledCode],
    ) -> MonthlyResult:
        return self.judge(patient_id, enrollments, consents, groups, billed_elsewhere)[0]

    def judge(
        self,
        patient_id: str,
        enrollments: Sequence[Enrollment],
        consents: Sequence[ProgramConsent],
        groups: Sequence[MinutesGroup],
        billed_elsewhere: Sequence[BilledCode],
    ) -> tuple[MonthlyResult, dict[str, Program]]:
        """The patient's month, and the program each code of it was judged under (a code may
        serve two, e.g. 99490 for CCM and complex CCM): the counted entries' program for earned
        codes, else the first program of the code's rule the patient is enrolled in."""
        rules, month = self.rules, self.month
        _check_one_patient(patient_id, enrollments, consents, ())
        _check_billed_elsewhere(rules, billed_elsewhere)
        in_month = {e.id for e in enrollments if _overlaps(e, self.first, self.last)}
        consent_day = {e.id: _consent_day(e, consents, self.last) for e in enrollments}
        blockers = {e.id: _blocker(rules, e, consent_day[e.id]) for e in enrollments}
        by_id = {e.id: e for e in enrollments}

        # Each group stands in for its entries as one "entry" whose id is its position.
        usable: list[_Usable] = []
        counted: dict[str, MinutesGroup] = {}
        for position, group in enumerate(groups):
            if group.patient_id != patient_id:
                raise _other_patient(group)
            enrollment = by_id.get(group.enrollment_id)
            role = group.staff_role
            if (
                enrollment is None
                or not group.countable
                or role is None
                or group.program is None
                or blockers[enrollment.id] is not None
                or not self._some_code_counts(group.program, role, enrollment)
            ):
                continue
            key = str(position)
            counted[key] = group
            stand_in = TimeEntry(
                id=key, status=TimeEntryStatus.FINISHED, interactive=group.interactive
            )
            usable.append(_Usable(stand_in, enrollment, role, group.minutes))

        referenced = {g.enrollment_id for g in groups if g.enrollment_id in by_id}
        in_play = [e for e in enrollments if e.id in in_month or e.id in referenced]
        candidates: list[_Candidate] = []
        not_earned: dict[str, str] = {}
        # Only codes of the programs in play can be judged; the rule file's order is kept.
        judged_codes = sorted({i for e in in_play for i in self.codes_of.get(e.program, ())})
        for index in judged_codes:
            code, rule = self.timed[index]
            relevant = [
                e for e in in_play if e.program in rule.programs and _phase_matches(rule, e, month)
            ]
            if not relevant:
                continue
            judged = _judge_code(code, rule, relevant, blockers, usable, month)
            if isinstance(judged, str):
                not_earned[code] = judged
            else:
                candidates.append(judged)

        programs: dict[str, Program] = {}
        held: set[Program | None] = {e.program for e in in_play}
        earned = []
        expanded: dict[tuple[str, ...], tuple[str, ...]] = {}
        for won in _resolve(rules, candidates, billed_elsewhere, not_earned):
            used = {counted[key].program for key in won.entry_ids}
            programs[won.code] = self._program(won.code, used)
            earned.append(_with_entries(won, counted, expanded))
        for missed in not_earned:
            programs[missed] = self._program(missed, held)
        order = self.order
        return MonthlyResult(
            patient_id=patient_id,
            month=month,
            rule_year=rules.rule_year,
            earned=tuple(sorted(earned, key=lambda e: order[e.code])),
            not_earned=tuple(
                NotEarned(code, reason)
                for code, reason in sorted(not_earned.items(), key=lambda item: order[item[0]])
            ),
            set_aside=(),
        ), programs


def _other_patient(group: MinutesGroup) -> RollUpInputError:
    return RollUpInputError(
        f"minutes of enrollment {group.enrollment_id} belong to another patient",
        item_id=group.enrollment_id,
    )


def _with_entries(
    earned: EarnedCode,
    counted: Mapping[str, MinutesGroup],
    expanded: dict[tuple[str, ...], tuple[str, ...]],
) -> EarnedCode:
    """``earned`` with the group keys in ``entry_ids`` replaced by the entries they stand for.

    ``roll_up`` lists counted entries oldest first (ties by id). A base code and its add-on
    count the same groups, so ``expanded`` keeps what was worked out for the first.
    """
    entry_ids = expanded.get(earned.entry_ids)
    if entry_ids is None:
        merged = sorted(item for key in earned.entry_ids for item in counted[key].entries)
        entry_ids = expanded[earned.entry_ids] = tuple(entry_id for _, entry_id in merged)
    return replace(earned, entry_ids=entry_ids)
