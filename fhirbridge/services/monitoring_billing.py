"""RPM device codes of a month (99454, 99445, 99453), as a billing program source.

    month = rpm_device_days(store, month=(2026, 11), tz=tz, rules=rules, patient_ids=None,
                            billed={})

Days with readings per 30-day period are counted in SQL (``store.device_days``); which periods
a month reports and what each earns is ``fhirbridge.billing.device_days`` (a period is judged
in the month of its last day, by that day's rule year; 99453 once per episode). This module
joins the two and hands the month-end report one line per patient and code:

- ``units`` is the number of the month's periods that earned the code (two periods of one
  episode can end in a 31-day month), the explanation names each period and its days
  ("12 days with readings of 16 (period 2, 2026-10-03 to 2026-11-01)");
- the practitioner is the enrollment's billing practitioner: one practitioner a period. When
  two RPM enrollments of a patient overlap, the one started first owns the readings; the other
  gets no episode until the first has ended;
- a code that excludes a code an earlier program billed this month is not earned ("excluded by
  ... "), the same way the time roll-up treats codes billed elsewhere.

Earlier periods of an episode (to find the one that billed 99453) are judged by their own
calendar year's rules: the month's own ``rules`` for its year, otherwise the shipped file of
that year, or the latest earlier one ("time passes").

Memory is flat in the number of readings: Python sees one row per enrollment and period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

from fhirbridge.billing.device_days import (
    EPISODE_STATUSES,
    Episode,
    PeriodJudgement,
    judge_month,
    period_days_of,
)
from fhirbridge.billing.errors import BillingError
from fhirbridge.billing.loader import latest_rule_year
from fhirbridge.billing.programs import ProgramMonth
from fhirbridge.billing.report import ReportLine
from fhirbridge.billing.result import BilledCode
from fhirbridge.billing.rules import ExclusionScope, RuleYear
from fhirbridge.domain import Enrollment, Program
from fhirbridge.persistence import Store
from fhirbridge.persistence.readmodels.device_days import EpisodeRow

__all__ = ["episodes_by_enrollment", "judged_periods", "rpm_device_days"]


def rpm_device_days(
    store: Store,
    *,
    month: tuple[int, int],
    tz: ZoneInfo,
    rules: RuleYear,
    patient_ids: Sequence[str] | None,
    billed: Mapping[str, Sequence[BilledCode]],
) -> ProgramMonth:
    """The month's RPM device-code lines and the codes billed, by patient (see module doc)."""
    del tz  # a reading's day was fixed in the practice time zone at ingest
    judged = judged_periods(store, month=month, rules=rules, patient_ids=patient_ids)
    lines: list[ReportLine] = []
    billed_here: dict[str, list[BilledCode]] = {}
    for patient_id, periods in groupby(judged, key=lambda j: j.patient_id):
        patient_lines = _lines(patient_id, list(periods), rules, billed.get(patient_id, ()))
        lines.extend(patient_lines)
        codes = [
            BilledCode(line.code, line.practitioner_id)
            for line in patient_lines
            if line.earned and line.practitioner_id is not None
        ]
        if codes:
            billed_here[patient_id] = codes
    return ProgramMonth(
        lines=tuple(lines),
        billed={patient_id: tuple(codes) for patient_id, codes in billed_here.items()},
    )


def judged_periods(
    store: Store,
    *,
    month: tuple[int, int],
    rules: RuleYear,
    patient_ids: Sequence[str] | None = None,
) -> list[PeriodJudgement]:
    """Every RPM period ending in ``month``, judged; by patient, then period end."""
    last = _month_last(month)
    rules_of = _RulesByYear(rules, year=month[0])
    length = period_days_of(rules)
    # One query: each period's days, with its enrollment (every episode has a period with a
    # reading). One row per enrollment and period: flat in the number of readings.
    rows = list(
        store.device_days.period_days(
            until=last, statuses=EPISODE_STATUSES, period_days=length, patient_ids=patient_ids
        )
    )
    enrollments = {row.enrollment_id: row.episode for row in rows}
    ordered = sorted(enrollments.values(), key=lambda e: (e.patient_id, e.start, e.enrollment_id))
    episodes = episodes_by_enrollment(ordered)
    judged: list[PeriodJudgement] = []
    for enrollment_id, group in groupby(rows, key=lambda row: row.enrollment_id):
        episode = episodes.get(enrollment_id)
        if episode is None:
            continue
        days = {row.number: row.days for row in group}
        judged.extend(judge_month(episode, days=days, month=month, rules_of=rules_of))
    judged.sort(key=lambda j: (j.patient_id, j.period.last, j.period.enrollment_id))
    return judged


def episodes_by_enrollment(rows: Sequence[EpisodeRow]) -> dict[str, Episode]:
    """The episodes by enrollment id; of overlapping enrollments, the earlier owns the days."""
    found: dict[str, Episode] = {}
    owned_until: dict[str, date | None] = {}  # patient -> the last episode's end
    for row in rows:  # by patient, then start
        enrollment = Enrollment(
            id=row.enrollment_id,
            patient_id=row.patient_id,
            program=Program.RPM,
            status=row.status,
            start=row.start,
            end=row.end,
            billing_practitioner_id=row.billing_practitioner_id,
        )
        episode = Episode.of(enrollment, first_day=row.first_day, consent_on=row.consent_on)
        if episode is None:
            continue
        if row.patient_id in owned_until:
            before = owned_until[row.patient_id]
            if before is None or episode.start <= before:
                continue  # one practitioner a period: the earlier enrollment owns these days
        owned_until[row.patient_id] = episode.end
        found[row.enrollment_id] = episode
    return found


def _lines(
    patient_id: str,
    periods: Sequence[PeriodJudgement],
    rules: RuleYear,
    billed_elsewhere: Sequence[BilledCode],
) -> list[ReportLine]:
    earned: dict[str, list[str]] = defaultdict(list)
    missed: dict[str, list[str]] = defaultdict(list)
    practitioner: dict[str, str | None] = {}
    for period in periods:
        for judgement in period.codes:
            code = judgement.code
            reason = judgement.explanation
            if judgement.earned:
                excluded = _excluded_by(code, period.practitioner_id, rules, billed_elsewhere)
                if excluded is None:
                    earned[code].append(reason)
                    practitioner.setdefault(code, period.practitioner_id)
                    continue
                reason = f"{excluded} ({period.period.label})"
            missed[code].append(reason)
    lines: list[ReportLine] = []
    order = {code: n for n, code in enumerate(rules.codes)}
    for code in sorted({*earned, *missed}, key=lambda c: (order.get(c, len(order)), c)):
        if code in earned:
            notes = earned[code] + [f"not earned: {m}" for m in missed.get(code, [])]
            lines.append(
                ReportLine(
                    patient_id=patient_id,
                    program=Program.RPM,
                    code=code,
                    earned=True,
                    units=len(earned[code]),
                    practitioner_id=practitioner[code],
                    explanation="; ".join(notes),
                )
            )
        else:
            lines.append(
                ReportLine(
                    patient_id=patient_id,
                    program=Program.RPM,
                    code=code,
                    earned=False,
                    explanation="; ".join(missed[code]),
                )
            )
    return lines


def _excluded_by(
    code: str,
    practitioner_id: str | None,
    rules: RuleYear,
    billed_elsewhere: Sequence[BilledCode],
) -> str | None:
    for other in billed_elsewhere:
        scope = rules.conflicts(code, other.code)
        if scope is ExclusionScope.PATIENT:
            return f"excluded by {other.code} for the same patient"
        if scope is ExclusionScope.SAME_PRACTITIONER and other.practitioner_id == practitioner_id:
            return f"excluded by {other.code} from the same practitioner"
    return None


class _RulesByYear:
    """The rules of a calendar year: the month's own, else the shipped file of that year or the
    latest earlier one; the month's rules when there is none."""

    def __init__(self, rules: RuleYear, *, year: int) -> None:
        self._known: dict[int, RuleYear] = {rules.rule_year: rules, year: rules}
        self._fallback = rules

    def __call__(self, year: int) -> RuleYear:
        found = self._known.get(year)
        if found is None:
            try:
                found = latest_rule_year(year)
            except BillingError:
                found = self._fallback
            self._known[year] = found
        return found


def _month_last(month: tuple[int, int]) -> date:
    year, number = month
    return date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)
