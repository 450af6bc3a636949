"""RPM device days: the 30-day periods of a monitoring episode, the days with readings in each,
and the device codes (99454, 99445, 99453) a period earns, in plain words.

    episode = Episode.of(enrollment, first_day=date(2026, 10, 3), consent_on=date(2026, 10, 1))
    judged = judge_month(episode, days={1: 12, 2: 18}, month=(2026, 11), rules_of=rules_of)

The rule files say which codes exist and how many days earn them (``device_days`` of a
declared code, see ``fhirbridge.billing.rules.DeviceDays``): nothing here names a code.
fhirbridge's reading of the points the reference leaves open:

- **Episode.** One per RPM enrollment whose status counts (active, on-hold, finished). It
  starts on the first day of monitoring: the first day on or after the enrollment's start with
  a reading that counts (from a device, not typed in by the patient). It ends with the
  enrollment's end date (inclusive); an enrollment without such a reading has no episode yet.
  A later enrollment (after a gap, say) is a new episode, with its own 99453.
- **Periods.** Back to back from the episode's first day, ``period_days`` (30) each: period n
  runs from ``start + 30 (n-1)`` to ``start + 30 n - 1``, whatever the calendar months. The
  period the enrollment ends in stops on its end date.
- **Days.** A day counts when at least one counting reading has that day, the day being fixed
  at ingest in the practice time zone; several readings or devices on a day are one day.
  Readings outside the episode count for nothing.
- **Date of service, month and rule year.** A period is judged once: in the calendar month of
  its last day (its 30th day, or the enrollment's end), by that day's rule year. So a period
  crossing a month boundary is reported in the month it ends in, never in both; a period
  still running at month end waits for the month it ends in.
- **Period codes.** A code of ``per: period`` is earned when the period's days fall in its
  range (99454: 16-30; 99445: 2-15 from CY2026; CY2025 has no 99445, so 2-15 days earn
  nothing then). Two earned codes that exclude each other: the one listed first in the rule
  file is kept. The enrollment's billing practitioner bills them: one practitioner a period.
- **99453** (``per: episode``): once per episode, with the first period of the episode whose
  days reach its ``min_days`` by that period's rule year (CY2025 16, CY2026 2: verify), and
  reported with that period. After that it is not listed again for the episode.
- **Blockers.** Without a billing practitioner on the enrollment, or (when the rule year's
  RPM program requires consent) without an active consent dated on or before the period's
  last day, a period earns nothing and says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from fhirbridge.billing.rules import DeviceDays, DeviceDaysPer, RuleYear
from fhirbridge.domain.enrollment import Enrollment, EnrollmentStatus, Program

__all__ = [
    "EPISODE_STATUSES",
    "CodeJudgement",
    "Episode",
    "Period",
    "PeriodJudgement",
    "count_days",
    "days_phrase",
    "judge_month",
    "judge_period",
    "period_days_of",
]

EPISODE_STATUSES = frozenset(
    {EnrollmentStatus.ACTIVE, EnrollmentStatus.ON_HOLD, EnrollmentStatus.FINISHED}
)
DEFAULT_PERIOD_DAYS = 30

RulesOf = Callable[[int], RuleYear]


def period_days_of(rules: RuleYear) -> int:
    """The period length of a rule year's device codes (30 when it has none)."""
    codes = _prepared(rules).codes
    return codes[0][1].period_days if codes else DEFAULT_PERIOD_DAYS


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A rule year's device codes and the pairs of them that exclude each other, worked out
    once: a practice's month judges thousands of periods by the same few rule years."""

    codes: tuple[tuple[str, DeviceDays], ...]
    episode_rules: tuple[DeviceDays, ...]
    excluded: frozenset[frozenset[str]]


_PREPARED: dict[int, tuple[RuleYear, _Prepared]] = {}


def _prepared(rules: RuleYear) -> _Prepared:
    # Keyed by identity; the rules are kept alongside so the id is not reused meanwhile.
    found = _PREPARED.get(id(rules))
    if found is not None and found[0] is rules:
        return found[1]
    codes = tuple(rules.device_day_codes())
    prepared = _Prepared(
        codes=codes,
        episode_rules=tuple(r for _, r in codes if r.per is DeviceDaysPer.EPISODE),
        excluded=frozenset(
            frozenset({a, b})
            for a, _ in codes
            for b, _ in codes
            if a != b and rules.conflicts(a, b) is not None
        ),
    )
    if len(_PREPARED) >= 32:
        _PREPARED.clear()
    _PREPARED[id(rules)] = (rules, prepared)
    return prepared


@dataclass(frozen=True, slots=True)
class Period:
    """One period of an episode: ``number`` from 1, ``first`` to ``last`` inclusive."""

    enrollment_id: str
    number: int
    first: date
    last: date  # the 30th day, or the enrollment's end when it comes first
    length: int  # the full period's days (30), even when the enrollment ends sooner

    def day_of(self, today: date) -> int:
        """Which day of the period ``today`` is (1 on its first day)."""
        return (today - self.first).days + 1

    @property
    def label(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


@dataclass(frozen=True, slots=True)
class Episode:
    """An RPM enrollment's monitoring, from its first day with a counting reading."""

    enrollment_id: str
    patient_id: str
    start: date  # the first day of monitoring
    end: date | None  # the enrollment's last day; None while it runs
    practitioner_id: str | None
    consent_on: date | None = None  # the earliest active consent

    @classmethod
    def of(
        cls, enrollment: Enrollment, *, first_day: date | None, consent_on: date | None = None
    ) -> Episode | None:
        """The episode of ``enrollment`` given its first day with a counting reading on or
        after its start (None: no episode yet, nor for enrollments of other programs or
        statuses that do not count)."""
        if (
            first_day is None
            or enrollment.program is not Program.RPM
            or enrollment.status not in EPISODE_STATUSES
            or first_day < enrollment.start
            or (enrollment.end is not None and first_day > enrollment.end)
        ):
            return None
        return cls(
            enrollment_id=enrollment.id,
            patient_id=enrollment.patient_id,
            start=first_day,
            end=enrollment.end,
            practitioner_id=enrollment.billing_practitioner_id,
            consent_on=consent_on,
        )

    def period(self, number: int, length: int = DEFAULT_PERIOD_DAYS) -> Period:
        first = self.start + timedelta(days=length * (number - 1))
        last = first + timedelta(days=length - 1)
        if self.end is not None and self.end < last:
            last = self.end
        return Period(self.enrollment_id, number, first, last, length)

    def number_of(self, day: date, length: int = DEFAULT_PERIOD_DAYS) -> int | None:
        """The number of the period ``day`` falls in; None outside the episode."""
        if day < self.start or (self.end is not None and day > self.end):
            return None
        return (day - self.start).days // length + 1

    def periods_until(self, day: date, length: int = DEFAULT_PERIOD_DAYS) -> list[Period]:
        """The periods that began on or before ``day``, oldest first."""
        last = self.number_of(min(day, self.end) if self.end is not None else day, length)
        return [] if last is None else [self.period(n, length) for n in range(1, last + 1)]


def count_days(
    episode: Episode, days: Iterable[date], length: int = DEFAULT_PERIOD_DAYS
) -> dict[int, int]:
    """Days with counting readings per period number, from the days of the patient's counting
    readings (repeats are one day; days outside the episode count for nothing). The read
    model computes the same in SQL."""
    counted: dict[int, set[date]] = {}
    for day in days:
        number = episode.number_of(day, length)
        if number is not None:
            counted.setdefault(number, set()).add(day)
    return {number: len(found) for number, found in sorted(counted.items())}


def days_phrase(days: int) -> str:
    return f"{days} day{'' if days == 1 else 's'} with readings"


@dataclass(frozen=True, slots=True)
class CodeJudgement:
    code: str
    earned: bool
    explanation: str


@dataclass(frozen=True, slots=True)
class PeriodJudgement:
    """A period judged in the month of its last day: its days and each device code's outcome."""

    patient_id: str
    period: Period
    days: int
    rule_year: int
    practitioner_id: str | None
    codes: tuple[CodeJudgement, ...]

    @property
    def earned(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.codes if c.earned)


def judge_period(
    episode: Episode,
    period: Period,
    *,
    days: int,
    rules: RuleYear,
    setup_billed_in: Period | None,
) -> PeriodJudgement:
    """What ``period`` earns with ``days`` days of readings under ``rules`` (its last day's
    rule year). ``setup_billed_in``: the earlier period of the episode that earned 99453."""
    where = f"period {period.number}, {period.label}"
    blocker = _blocker(episode, period, rules)
    judged: list[CodeJudgement] = []
    earned: list[str] = []
    prepared = _prepared(rules)
    for code, rule in prepared.codes:
        if rule.per is DeviceDaysPer.EPISODE and setup_billed_in is not None:
            continue  # once per episode: billed already, not listed again
        if blocker is not None:
            judged.append(CodeJudgement(code, False, f"{blocker} ({where})"))
            continue
        if not rule.fits(days):
            judged.append(CodeJudgement(code, False, f"{_short_of(days, rule)} ({where})"))
            continue
        excluded_by = next((e for e in earned if frozenset({code, e}) in prepared.excluded), None)
        if excluded_by is not None:
            judged.append(CodeJudgement(code, False, f"excluded by {excluded_by} ({where})"))
            continue
        earned.append(code)
        note = "once per episode, " if rule.per is DeviceDaysPer.EPISODE else ""
        judged.append(CodeJudgement(code, True, f"{note}{days_phrase(days)} ({where})"))
    return PeriodJudgement(
        patient_id=episode.patient_id,
        period=period,
        days=days,
        rule_year=rules.rule_year,
        practitioner_id=episode.practitioner_id,
        codes=tuple(judged),
    )


def _short_of(days: int, rule: DeviceDays) -> str:
    if days < rule.min_days:
        return f"{days_phrase(days)} of {rule.min_days}"
    return f"{days_phrase(days)}, more than {rule.max_days}"


def _blocker(episode: Episode, period: Period, rules: RuleYear) -> str | None:
    if episode.practitioner_id is None:
        return "no billing practitioner on the enrollment"
    program = rules.programs.get(Program.RPM)
    if program is not None and program.consent_required:
        if episode.consent_on is None:
            return "no consent on file"
        if episode.consent_on > period.last:
            return f"consent dated {episode.consent_on.isoformat()}, after this period"
    return None


def _setup_earned(episode: Episode, period: Period, days: int, rules: RuleYear) -> bool:
    """Whether ``period`` is the one that bills the episode's 99453 (no earlier one did)."""
    if _blocker(episode, period, rules) is not None:
        return False
    return any(rule.fits(days) for rule in _prepared(rules).episode_rules)


def judge_month(
    episode: Episode,
    *,
    days: Mapping[int, int],
    month: tuple[int, int],
    rules_of: RulesOf,
) -> list[PeriodJudgement]:
    """The periods of ``episode`` that end in ``month``, judged.

    ``days``: days with readings per period number (missing: none), at least for every period
    up to the month's end; ``rules_of(year)``: the rules of a calendar year (earlier periods
    are judged by their own year to find the one that billed 99453)."""
    month_first = date(month[0], month[1], 1)
    month_last = _month_last(month)
    length = period_days_of(rules_of(month[0]))
    judged: list[PeriodJudgement] = []
    setup_in: Period | None = None
    for period in episode.periods_until(month_last, length):
        count = days.get(period.number, 0)
        rules = rules_of(period.last.year)
        if period.last >= month_first and period.last <= month_last:
            judged.append(
                judge_period(episode, period, days=count, rules=rules, setup_billed_in=setup_in)
            )
        if setup_in is None and _setup_earned(episode, period, count, rules):
            setup_in = period
    return judged


def _month_last(month: tuple[int, int]) -> date:
    year, number = month
    following = date(year + number // 12, number % 12 + 1, 1)
    return following - timedelta(days=1)
