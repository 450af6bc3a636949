"""A practice's month of billing, judged from minutes pre-aggregated per group.

``roll_up`` judges one patient from every one of their time entries. For a month-end run over a
whole practice the database sums the minutes instead (``store.month_minutes``, a read model of
the persistence layer) and this module judges each patient from one small group per
(patient, enrollment, program, staff role, staff member), with the same public steps as
``roll_up`` (``patient_facts``, ``judge_usable``, ``evaluate_entry``), so the two paths can
differ only in how entries become minutes, which the equivalence test exercises.

Entries set aside are explained per entry: the groups that count for nothing list each of
their entries' start, end and status, from which the entry is judged like ``roll_up`` does
(``evaluate_entry``), without reading it again (a month may set aside tens of thousands).

What "the same inputs" means: ``roll_up`` given the patient's enrollments, consents and the time
entries of the month (those that start in it or whose minutes overlap it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Protocol
from zoneinfo import ZoneInfo

from fhirbridge.billing.errors import RollUpInputError, RuleYearMismatch
from fhirbridge.billing.period import month_interval
from fhirbridge.billing.result import BilledCode, EarnedCode, MonthlyResult, SetAside
from fhirbridge.billing.rollup import (
    PatientFacts,
    Usable,
    check_billed_elsewhere,
    check_one_patient,
    evaluate_entry,
    judge_usable,
    patient_facts,
)
from fhirbridge.billing.rules import MonthPhase, RuleYear
from fhirbridge.domain.enrollment import Enrollment, Program, ProgramConsent
from fhirbridge.domain.people import StaffRole
from fhirbridge.domain.timeentry import TimeEntry, TimeEntryStatus

__all__ = [
    "MinuteGroup",
    "PracticeMonth",
    "judge_practice_month",
    "month_days",
    "roll_up_summary",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MinuteGroup(Protocol):
    """One patient's entries of the month sharing enrollment, program, role and staff, with
    their minutes summed (``store.month_minutes`` makes them). ``countable`` groups hold the
    entries whose minutes may count; ``entries`` are (start in UTC microseconds, entry id);
    ``details`` are (start, entry id, end in UTC microseconds or None, status)."""

    @property
    def patient_id(self) -> str: ...
    @property
    def enrollment_id(self) -> str | None: ...
    @property
    def program(self) -> Program | None: ...
    @property
    def staff_id(self) -> str | None: ...
    @property
    def staff_role(self) -> StaffRole | None: ...
    @property
    def countable(self) -> bool: ...
    @property
    def minutes(self) -> int: ...
    @property
    def interactive(self) -> bool: ...
    @property
    def entries(self) -> tuple[tuple[int, str], ...]: ...
    @property
    def details(self) -> tuple[tuple[int, str, int | None, TimeEntryStatus], ...]: ...


@dataclass(frozen=True, slots=True)
class PracticeMonth:
    """A month of a practice: one result per patient with an enrollment in play or an entry
    set aside, by patient id."""

    month: tuple[int, int]
    results: tuple[MonthlyResult, ...]
    # (patient id, code) -> the program the code was judged under, for per-program reports
    programs: Mapping[tuple[str, str], Program] = field(default_factory=dict)
    # entry id -> its program (when it names one), for set-aside lines of per-program reports
    entry_programs: Mapping[str, Program] = field(default_factory=dict)


def month_days(month: tuple[int, int]) -> tuple[date, date]:
    """The first and the last day of a calendar month."""
    year, number = month
    following = date(year + number // 12, number % 12 + 1, 1)
    return date(year, number, 1), following - timedelta(days=1)


def judge_practice_month(
    *,
    rules: RuleYear,
    month: tuple[int, int],
    tz: ZoneInfo,
    groups: Sequence[MinuteGroup],
    enrollments: Sequence[Enrollment],
    consents: Sequence[ProgramConsent],
    billed_elsewhere: Mapping[str, Sequence[BilledCode]] | None = None,
) -> PracticeMonth:
    """Every patient's month from the practice's grouped minutes.

    ``enrollments`` and ``consents``: those in play (overlapping the month or named by its
    entries) with their active consents. ``billed_elsewhere`` maps a patient id to the codes
    billed outside the roll-up (APCM, TCM).
    """
    judge = _MonthJudge(rules, month, tz)
    by_patient: dict[str, tuple[list[Enrollment], list[ProgramConsent], list[MinuteGroup]]]
    by_patient = defaultdict(lambda: ([], [], []))
    for enrollment in enrollments:
        by_patient[enrollment.patient_id][0].append(enrollment)
    for consent in consents:
        by_patient[consent.patient_id][1].append(consent)
    for group in groups:
        by_patient[group.patient_id][2].append(group)
    elsewhere = billed_elsewhere or {}
    results: list[MonthlyResult] = []
    programs: dict[tuple[str, str], Program] = {}
    entry_programs: dict[str, Program] = {}
    # One patient at a time, to the end: what judging a patient needs (facts, stand-ins) is
    # garbage by the next one, so the collector's full passes see little besides the results.
    for patient_id in sorted(by_patient):
        patient_enrollments, patient_consents, patient_groups = by_patient.pop(patient_id)
        patient = judge.judge(
            patient_id,
            patient_enrollments,
            patient_consents,
            patient_groups,
            elsewhere.get(patient_id, ()),
        )
        set_aside = judge.set_aside(patient.facts, patient.uncounted, entry_programs)
        if not (patient.in_play or set_aside):
            continue
        result = patient.result
        results.append(_with_set_aside(result, set_aside))
        patient_id = result.patient_id
        programs.update(((patient_id, code), program) for code, program in patient.programs.items())
    return PracticeMonth(
        month=month, results=tuple(results), programs=programs, entry_programs=entry_programs
    )


def roll_up_summary(
    *,
    rules: RuleYear,
    month: tuple[int, int],
    patient_id: str,
    enrollments: Sequence[Enrollment],
    consents: Sequence[ProgramConsent],
    groups: Sequence[MinuteGroup],
    tz: ZoneInfo,
    billed_elsewhere: Sequence[BilledCode] = (),
) -> MonthlyResult:
    """``roll_up`` over one patient's grouped minutes: the same codes, units, practitioners,
    minutes, entry ids, reasons and entries set aside."""
    judge = _MonthJudge(rules, month, tz)
    judged = judge.judge(patient_id, enrollments, consents, groups, billed_elsewhere)
    return _with_set_aside(judged.result, judge.set_aside(judged.facts, judged.uncounted))


@dataclass(frozen=True, slots=True)
class _Judged:
    facts: PatientFacts
    result: MonthlyResult  # without set-aside entries: those are judged once read
    programs: dict[str, Program]
    uncounted: tuple[MinuteGroup, ...]  # groups whose minutes count for nothing
    in_play: bool  # some enrollment of the patient is judged this month


class _MonthJudge:
    """What ``roll_up`` works out per call, worked out once for a month of many patients."""

    def __init__(self, rules: RuleYear, month: tuple[int, int], tz: ZoneInfo) -> None:
        if rules.rule_year != month[0]:
            raise RuleYearMismatch(rule_year=rules.rule_year, month=month)
        self.rules = rules
        self.month = month
        self.tz = tz
        self.span = month_interval(*month, tz)
        self.timed = rules.timed_codes()
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

    def judge(
        self,
        patient_id: str,
        enrollments: Sequence[Enrollment],
        consents: Sequence[ProgramConsent],
        groups: Sequence[MinuteGroup],
        billed_elsewhere: Sequence[BilledCode],
    ) -> _Judged:
        """The patient's month (set-aside entries still to read), and the program each code
        was judged under (a code may serve two, e.g. 99490 for CCM and complex CCM): the
        counted entries' program for earned codes, else the first program of the code's rule
        the patient is enrolled in."""
        rules = self.rules
        facts = patient_facts(rules, self.month, enrollments, consents)
        check_one_patient(patient_id, enrollments, consents, ())
        check_billed_elsewhere(rules, billed_elsewhere)

        # Each group stands in for its entries as one "entry" whose id is its position.
        usable: list[Usable] = []
        counted: dict[str, MinuteGroup] = {}
        uncounted: list[MinuteGroup] = []
        for position, group in enumerate(groups):
            if group.patient_id != patient_id:
                raise _other_patient(group)
            enrollment = facts.enrollments.get(group.enrollment_id or "")
            role = group.staff_role
            if (
                enrollment is None
                or not group.countable
                or role is None
                or group.program is None
                or facts.blockers[enrollment.id] is not None
                or not self._some_code_counts(group.program, role, enrollment)
            ):
                uncounted.append(group)
                continue
            key = str(position)
            counted[key] = group
            stand_in = TimeEntry(
                id=key, status=TimeEntryStatus.FINISHED, interactive=group.interactive
            )
            usable.append(Usable(stand_in, enrollment, role, group.minutes))

        referenced = {g.enrollment_id for g in groups if g.enrollment_id in facts.enrollments}
        in_play = [e for e in enrollments if e.id in facts.in_month or e.id in referenced]
        # Only codes of the programs in play can be judged; the rule file's order is kept.
        indexes = sorted({i for e in in_play for i in self.codes_of.get(e.program, ())})
        result = judge_usable(
            rules,
            facts,
            patient_id=patient_id,
            usable=usable,
            referenced=referenced,
            billed_elsewhere=billed_elsewhere,
            codes=[self.timed[i] for i in indexes],
        )
        programs: dict[str, Program] = {}
        expanded: dict[tuple[str, ...], tuple[str, ...]] = {}
        earned = []
        for won in result.earned:
            used = {counted[key].program for key in won.entry_ids}
            programs[won.code] = self._program(won.code, used)
            earned.append(_with_entries(won, counted, expanded))
        held: set[Program | None] = {e.program for e in in_play}
        for missed in result.not_earned:
            programs[missed.code] = self._program(missed.code, held)
        return _Judged(
            facts,
            MonthlyResult(
                result.patient_id,
                result.month,
                result.rule_year,
                tuple(earned),
                result.not_earned,
                result.set_aside,
            ),
            programs,
            tuple(uncounted),
            bool(in_play),
        )

    def set_aside(
        self,
        facts: PatientFacts,
        groups: Sequence[MinuteGroup],
        entry_programs: dict[str, Program] | None = None,
    ) -> tuple[SetAside, ...]:
        """The entries of ``groups`` that count for nothing, each with roll_up's reason, in
        roll_up's order (oldest first, ties by id: ``entry_order_key`` of UTC starts).

        ``entry_programs`` is given the program of each entry of ``groups`` naming one."""
        if not groups:
            return ()
        listed = sorted(
            (
                (start, entry_id, end, status, group)
                for group in groups
                for start, entry_id, end, status in group.details
            ),
            key=itemgetter(0, 1),
        )
        rules, span, tz = self.rules, self.span, self.tz
        reasons = []
        for start, entry_id, end, status, group in listed:
            program = group.program
            if entry_programs is not None and program is not None:
                entry_programs[entry_id] = program
            # The entry as roll_up sees it: its end stands for recorded minutes or end time
            # alike (the minutes run from the start), and the rest is the group's.
            entry = TimeEntry(
                entry_id,
                status,
                group.patient_id,
                group.enrollment_id,
                program,
                group.staff_id,
                group.staff_role,
                None,
                None,
                _EPOCH + timedelta(microseconds=start),
                None if end is None else _EPOCH + timedelta(microseconds=end),
            )
            outcome = evaluate_entry(entry, rules, facts, span, tz)
            if isinstance(outcome, str):
                reasons.append(SetAside(entry_id, outcome))
        return tuple(reasons)


def _other_patient(group: MinuteGroup) -> RollUpInputError:
    return RollUpInputError(
        f"minutes of enrollment {group.enrollment_id} belong to another patient",
        item_id=group.enrollment_id,
    )


def _with_entries(
    earned: EarnedCode,
    counted: Mapping[str, MinuteGroup],
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
    # Built directly: dataclasses.replace costs several times more, tens of thousands of times.
    return EarnedCode(
        earned.code,
        earned.units,
        earned.practitioner_id,
        earned.minutes,
        entry_ids,
        earned.note,
    )


def _with_set_aside(result: MonthlyResult, set_aside: tuple[SetAside, ...]) -> MonthlyResult:
    return MonthlyResult(
        result.patient_id,
        result.month,
        result.rule_year,
        result.earned,
        result.not_earned,
        set_aside,
    )
