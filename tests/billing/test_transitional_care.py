"""TCM 99495 / 99496, hand-computed.

The calendar used (mappings/calendars/us-federal-holidays.yaml) and the CY2026 rule file:

- Discharge Friday 2026-03-06: business day 1 is Monday 03-09, day 2 Tuesday 03-10, day 3
  Wednesday 03-11. Visit day 7 = 03-13, day 8 = 03-14, day 14 = 03-20, day 15 = 03-21.
- Discharge Friday 2026-01-16: Monday 01-19 is Martin Luther King Jr. Day, so business day 1
  is Tuesday 01-20, day 2 Wednesday 01-21, day 3 Thursday 01-22.
- Discharge Thursday 2027-12-30: Friday 12-31 is New Year's Day 2028 observed; the calendar
  has no 2028, so business day 1 is Monday 2028-01-03 and day 2 Tuesday 01-04 (weekends only).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fhirbridge.billing.errors import RuleFileError
from fhirbridge.billing.loader import load_rule_year, load_rules, rule_file
from fhirbridge.billing.programs import ProgramMonth
from fhirbridge.billing.transitional_care import TcmMonthInput, code_terms, tcm_month
from fhirbridge.domain.transitional_care import (
    BusinessCalendar,
    TcmComplexity,
    TcmContact,
    TcmContactKind,
    TcmPeriod,
    business_day_number,
    contact_deadline,
    judge_period,
    judge_periods,
)
from fhirbridge.mapping.calendars import load_calendar

CALENDAR = load_calendar()
TERMS = code_terms(load_rule_year(2026))
FRIDAY = date(2026, 3, 6)
CONTACT = TcmContactKind.INTERACTIVE_CONTACT
ATTEMPT = TcmContactKind.UNSUCCESSFUL_ATTEMPT
VISIT = TcmContactKind.FACE_TO_FACE_VISIT


def period(
    discharged_on: date = FRIDAY,
    complexity: TcmComplexity | None = TcmComplexity.HIGH,
    period_id: str = "tcm-1",
) -> TcmPeriod:
    return TcmPeriod(
        id=period_id,
        patient_id="p1",
        discharge_key=f"Encounter/{period_id}",
        discharged_on=discharged_on,
        complexity=complexity,
        practitioner_id="dr-1",
    )


def contact(kind: TcmContactKind, day: date, *, n: int = 1, period_id: str = "tcm-1") -> TcmContact:
    return TcmContact(
        id=f"{period_id}-{kind.value}-{n}",
        period_id=period_id,
        patient_id="p1",
        kind=kind,
        occurred_on=day,
    )


def verdicts(*contacts: TcmContact, of: TcmPeriod | None = None) -> dict[str, tuple[bool, str]]:
    judged = judge_period(of or period(), contacts, terms=TERMS, calendar=CALENDAR)
    return {v.code: (v.earned, v.explanation) for v in judged.verdicts}


def earned(*contacts: TcmContact, of: TcmPeriod | None = None) -> str | None:
    judged = judge_period(of or period(), contacts, terms=TERMS, calendar=CALENDAR)
    return None if judged.earned is None else judged.earned.code


# -- counting business days -----------------------------------------------------------------


def test_business_day_1_is_the_first_business_day_after_the_discharge_day() -> None:
    assert contact_deadline(FRIDAY, 1, CALENDAR).due == date(2026, 3, 9)
    assert contact_deadline(FRIDAY, 2, CALENDAR).due == date(2026, 3, 10)


def test_a_holiday_monday_is_no_business_day() -> None:
    assert contact_deadline(date(2026, 1, 16), 2, CALENDAR).due == date(2026, 1, 21)
    assert business_day_number(date(2026, 1, 16), date(2026, 1, 22), CALENDAR) == 3


def test_a_year_without_calendar_counts_weekends_and_says_the_calendar_is_missing() -> None:
    due = contact_deadline(date(2027, 12, 30), 2, CALENDAR)

    assert due.due == date(2028, 1, 4)
    assert due.missing_calendar_years == (2028,)
    assert due.calendar_note(CALENDAR) == (
        "no us-federal-holidays calendar for 2028: only weekends were skipped"
    )


def test_an_empty_calendar_still_skips_weekends_on_january_1() -> None:
    nothing = BusinessCalendar(name="none")

    assert contact_deadline(date(2031, 1, 1), 2, nothing).due == date(2031, 1, 3)
    assert contact_deadline(date(2031, 1, 2), 2, nothing).due == date(2031, 1, 6)


# -- the contact ----------------------------------------------------------------------------


def test_contact_on_business_day_2_across_a_weekend_earns() -> None:
    assert earned(contact(CONTACT, date(2026, 3, 10)), contact(VISIT, date(2026, 3, 13))) == "99496"


def test_contact_on_business_day_3_is_missed_with_the_reason() -> None:
    found = verdicts(contact(CONTACT, date(2026, 3, 11)), contact(VISIT, date(2026, 3, 13)))

    assert found["99496"] == (
        False,
        "contact on business day 3 (2026-03-11); due by business day 2, 2026-03-10",
    )
    assert found["99495"][0] is False


def test_contact_on_the_saturday_after_discharge_is_in_time() -> None:
    assert earned(contact(CONTACT, date(2026, 3, 7)), contact(VISIT, date(2026, 3, 13))) == "99496"


def test_a_holiday_monday_shifts_the_contact_deadline() -> None:
    friday = period(date(2026, 1, 16))
    wednesday = contact(CONTACT, date(2026, 1, 21))
    thursday = contact(CONTACT, date(2026, 1, 22))
    visit = contact(VISIT, date(2026, 1, 23))

    assert earned(wednesday, visit, of=friday) == "99496"
    assert verdicts(thursday, visit, of=friday)["99496"] == (
        False,
        "contact on business day 3 (2026-01-22); due by business day 2, 2026-01-21",
    )


def test_two_timely_unsuccessful_attempts_stand_in_for_the_contact() -> None:
    found = verdicts(
        contact(ATTEMPT, date(2026, 3, 9), n=1),
        contact(ATTEMPT, date(2026, 3, 10), n=2),
        contact(VISIT, date(2026, 3, 13)),
    )

    assert found["99496"] == (
        True,
        "visit on day 7, within 7; 2 documented unsuccessful attempts by 2026-03-10 stand in "
        "for the contact (2 needed)",
    )


def test_one_unsuccessful_attempt_is_not_enough() -> None:
    found = verdicts(contact(ATTEMPT, date(2026, 3, 9)), contact(VISIT, date(2026, 3, 13)))

    assert found["99496"] == (
        False,
        "no interactive contact; due by business day 2, 2026-03-10; "
        "1 timely unsuccessful attempt(s), 2 needed",
    )


def test_a_late_attempt_does_not_count() -> None:
    late = verdicts(
        contact(ATTEMPT, date(2026, 3, 9), n=1),
        contact(ATTEMPT, date(2026, 3, 11), n=2),
        contact(VISIT, date(2026, 3, 13)),
    )
    assert late["99496"][0] is False


# -- the visit ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("complexity", "visit_on", "code"),
    [
        (TcmComplexity.HIGH, date(2026, 3, 13), "99496"),  # day 7
        (TcmComplexity.HIGH, date(2026, 3, 14), "99495"),  # day 8: at least moderate
        (TcmComplexity.HIGH, date(2026, 3, 20), "99495"),  # day 14
        (TcmComplexity.HIGH, date(2026, 3, 21), None),  # day 15
        (TcmComplexity.MODERATE, date(2026, 3, 13), "99495"),  # day 7, moderate
        (TcmComplexity.MODERATE, date(2026, 3, 14), "99495"),  # day 8
        (TcmComplexity.MODERATE, date(2026, 3, 20), "99495"),  # day 14
        (TcmComplexity.MODERATE, date(2026, 3, 21), None),  # day 15
    ],
)
def test_visit_day_and_complexity_decide_the_code(
    complexity: TcmComplexity, visit_on: date, code: str | None
) -> None:
    high_or_moderate = period(complexity=complexity)
    timely = contact(CONTACT, date(2026, 3, 9))

    assert earned(timely, contact(VISIT, visit_on), of=high_or_moderate) == code


def test_visit_on_day_8_explains_why_99496_was_missed() -> None:
    found = verdicts(contact(CONTACT, date(2026, 3, 9)), contact(VISIT, date(2026, 3, 14)))

    assert found["99496"] == (False, "visit on day 8 (2026-03-14); due by day 7, 2026-03-13")
    assert found["99495"][0] is True


def test_visit_on_day_15_misses_both() -> None:
    found = verdicts(contact(CONTACT, date(2026, 3, 9)), contact(VISIT, date(2026, 3, 21)))

    assert found["99495"] == (False, "visit on day 15 (2026-03-21); due by day 14, 2026-03-20")


def test_moderate_complexity_never_earns_99496() -> None:
    found = verdicts(
        contact(CONTACT, date(2026, 3, 9)),
        contact(VISIT, date(2026, 3, 13)),
        of=period(complexity=TcmComplexity.MODERATE),
    )

    assert found["99496"] == (False, "needs high complexity, recorded moderate")


def test_without_recorded_complexity_nothing_is_earned() -> None:
    found = verdicts(
        contact(CONTACT, date(2026, 3, 9)),
        contact(VISIT, date(2026, 3, 13)),
        of=period(complexity=None),
    )

    assert {earned for earned, _ in found.values()} == {False}
    assert found["99495"][1] == "complexity not recorded: the care manager records moderate or high"


def test_without_a_visit_the_deadline_is_named() -> None:
    found = verdicts(contact(CONTACT, date(2026, 3, 9)))

    assert found["99496"] == (False, "no face-to-face visit; due by day 7, 2026-03-13")


# -- once per 30 days -----------------------------------------------------------------------


def test_a_second_discharge_within_30_days_of_an_earned_one_earns_nothing() -> None:
    first = period(FRIDAY, period_id="tcm-1")
    second = period(date(2026, 3, 20), period_id="tcm-2")  # day 14 of the first period
    contacts = [
        contact(CONTACT, date(2026, 3, 9), period_id="tcm-1"),
        contact(VISIT, date(2026, 3, 13), period_id="tcm-1"),
        contact(CONTACT, date(2026, 3, 23), period_id="tcm-2"),
        contact(VISIT, date(2026, 3, 25), period_id="tcm-2"),
    ]

    judged = judge_periods([second, first], contacts, terms=TERMS, calendar=CALENDAR)

    assert [j.earned.code if j.earned else None for j in judged] == ["99496", None]
    assert judged[1].verdicts[0].explanation == (
        "TCM already earned for the discharge of 2026-03-06: once per patient per 30 days"
    )


def test_a_discharge_after_the_30_days_earns_again() -> None:
    first = period(FRIDAY, period_id="tcm-1")
    later = period(date(2026, 4, 5), period_id="tcm-2")  # the first period ended 04-04
    contacts = [
        contact(CONTACT, date(2026, 3, 9), period_id="tcm-1"),
        contact(VISIT, date(2026, 3, 13), period_id="tcm-1"),
        contact(CONTACT, date(2026, 4, 6), period_id="tcm-2"),
        contact(VISIT, date(2026, 4, 10), period_id="tcm-2"),
    ]

    judged = judge_periods([first, later], contacts, terms=TERMS, calendar=CALENDAR)

    assert [j.earned.code if j.earned else None for j in judged] == ["99496", "99496"]


# -- the month's report lines ---------------------------------------------------------------


def month_of(month: tuple[int, int], contacts: list[TcmContact]) -> ProgramMonth:
    return tcm_month(
        [TcmMonthInput([period()], contacts)],
        month=month,
        rules=load_rule_year(2026),
        calendar=CALENDAR,
    )


def test_the_month_of_the_visit_reports_the_code_and_bills_it() -> None:
    contacts = [contact(CONTACT, date(2026, 3, 10)), contact(VISIT, date(2026, 3, 13))]

    march = month_of((2026, 3), contacts)

    assert [(line.code, line.earned) for line in march.lines] == [
        ("99496", True),
        ("99495", False),
    ]
    assert march.lines[0].explanation == (
        "discharge 2026-03-06: visit on day 7, within 7; contact on business day 2 "
        "(2026-03-10); due by business day 2, 2026-03-10"
    )
    assert march.lines[1].explanation == "discharge 2026-03-06: 99496 earned instead"
    assert [(b.code, b.practitioner_id) for b in march.billed["p1"]] == [("99496", "dr-1")]
    assert month_of((2026, 4), contacts).lines == ()


def test_a_period_without_visit_is_reported_in_the_month_its_30_days_end() -> None:
    contacts = [contact(CONTACT, date(2026, 3, 10))]  # the period ends 2026-04-04

    assert month_of((2026, 3), contacts).lines == ()
    april = month_of((2026, 4), contacts)
    assert [(line.code, line.earned) for line in april.lines] == [
        ("99496", False),
        ("99495", False),
    ]
    assert april.billed == {}


# -- the rule file --------------------------------------------------------------------------


def test_a_timed_code_counting_tcm_minutes_is_refused_with_its_line(tmp_path: Path) -> None:
    override = tmp_path / "override.yaml"
    override.write_text('codes:\n  "99490":\n    programs: [CCM, TCM]\n', encoding="utf-8")

    with pytest.raises(RuleFileError) as refused:
        load_rules(rule_file(2026), override=override)

    (problem,) = [p for p in refused.value.problems if "TCM is judged" in p.message]
    assert (problem.file, problem.line) == (override, 3)
    assert problem.message == (
        "TCM is judged per discharge: its minutes never count toward a timed code"
    )


def test_tcm_codes_must_share_their_contact_rule(tmp_path: Path) -> None:
    override = tmp_path / "override.yaml"
    override.write_text(
        'codes:\n  "99496":\n    transitional_care:\n      contact_within_business_days: 3\n',
        encoding="utf-8",
    )

    with pytest.raises(RuleFileError, match="a TCM period has one contact deadline"):
        load_rules(rule_file(2026), override=override)


def test_the_rule_files_declare_99495_and_99496_with_their_terms() -> None:
    for year in (2025, 2026):
        terms = {t.code: t for t in code_terms(load_rule_year(year))}
        assert (terms["99496"].visit_within_days, terms["99495"].visit_within_days) == (7, 14)
        assert terms["99495"].complexities == {TcmComplexity.MODERATE, TcmComplexity.HIGH}
