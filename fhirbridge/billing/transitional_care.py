"""TCM (99495 / 99496) as month-end report lines, from the rule year's ``transitional_care`` data.

The judgement itself is the domain's (``fhirbridge.domain.transitional_care``); this module
reads the terms from the rule file, loads the holiday calendar the file names, and turns a
month's judgements into report lines and billed codes:

- A period belongs to the month of its date of service (the visit): one line per TCM code,
  earned or not, with the explanation.
- A period without a visit belongs to the month its 30 days end in, with lines saying why
  nothing was earned ("no face-to-face visit; due by day 14, 2026-03-20"). A report of the
  current month, made before that last day, says so early: it is a draft until the month ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fhirbridge.billing.programs import ProgramMonth
from fhirbridge.billing.report import ReportLine
from fhirbridge.billing.result import BilledCode
from fhirbridge.billing.rules import RuleYear
from fhirbridge.domain.enrollment import Program
from fhirbridge.domain.transitional_care import (
    BusinessCalendar,
    TcmCodeTerms,
    TcmComplexity,
    TcmContact,
    TcmJudgement,
    TcmPeriod,
    judge_periods,
)

__all__ = ["TcmMonthInput", "code_terms", "holiday_calendar_name", "tcm_month"]


def code_terms(rules: RuleYear) -> list[TcmCodeTerms]:
    """The year's TCM codes, the most demanding visit deadline first (99496 before 99495), so
    a visit in time for both earns the higher code."""
    terms = [
        TcmCodeTerms(
            code=code,
            complexities=frozenset(TcmComplexity(c) for c in rule.complexities),
            contact_within_business_days=rule.contact_within_business_days,
            visit_within_days=rule.visit_within_days,
            attempts_for_contact=rule.attempts_for_contact,
        )
        for code, rule in rules.transitional_care_codes()
    ]
    return sorted(terms, key=lambda t: t.visit_within_days)


def holiday_calendar_name(rules: RuleYear) -> str | None:
    return next((rule.holiday_calendar for _, rule in rules.transitional_care_codes()), None)


@dataclass(frozen=True, slots=True)
class TcmMonthInput:
    """One patient's periods and contacts (all of them: earlier periods decide "once per 30
    days")."""

    periods: Sequence[TcmPeriod]
    contacts: Sequence[TcmContact]


def _month_of(judgement: TcmJudgement, period: TcmPeriod) -> tuple[int, int]:
    day = judgement.date_of_service or period.last_day
    return (day.year, day.month)


def tcm_month(
    patients: Sequence[TcmMonthInput],
    *,
    month: tuple[int, int],
    rules: RuleYear,
    calendar: BusinessCalendar,
) -> ProgramMonth:
    """The TCM lines and billed codes of ``month``."""
    terms = code_terms(rules)
    if not terms:
        return ProgramMonth()
    lines: list[ReportLine] = []
    billed: dict[str, list[BilledCode]] = {}
    for patient in patients:
        by_id = {p.id: p for p in patient.periods}
        for judgement in judge_periods(
            patient.periods, patient.contacts, terms=terms, calendar=calendar
        ):
            period = by_id[judgement.period_id]
            if _month_of(judgement, period) != month:
                continue
            practitioner = period.practitioner_id or ""
            for verdict in judgement.verdicts:
                lines.append(
                    ReportLine(
                        patient_id=period.patient_id,
                        program=Program.TCM,
                        code=verdict.code,
                        earned=verdict.earned,
                        units=1 if verdict.earned else 0,
                        practitioner_id=period.practitioner_id if verdict.earned else None,
                        entry_ids=judgement.contact_ids if verdict.earned else (),
                        explanation=f"discharge {period.discharged_on.isoformat()}: "
                        + verdict.explanation,
                    )
                )
                if verdict.earned:
                    billed.setdefault(period.patient_id, []).append(
                        BilledCode(verdict.code, practitioner)
                    )
    return ProgramMonth(
        lines=tuple(lines), billed={pid: tuple(codes) for pid, codes in billed.items()}
    )
