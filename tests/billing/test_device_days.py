"""RPM device days, hand-computed: 30-day periods from the first day of monitoring, days with
readings per period, and the device codes each period earns by its rule year.

Period 1 of an episode starting on 2026-03-01 runs 2026-03-01 to 2026-03-30 (30 days) and is
judged in March 2026, by CY2026 (99454 16-30 days, 99445 2-15 days, 99453 from 2 days, verify).
The same episode a year earlier is judged by CY2025 (99454 only; 99453 from 16 days).
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import pytest

from fhirbridge.billing import latest_rule_year, load_rule_year
from fhirbridge.billing.device_days import (
    Episode,
    PeriodJudgement,
    count_days,
    judge_month,
)
from fhirbridge.billing.loader import rule_file
from fhirbridge.billing.rules import RuleYear
from fhirbridge.domain import Enrollment, EnrollmentStatus, Program


@cache
def rules_of(year: int) -> RuleYear:
    return load_rule_year(year)


def enrollment(
    start: date,
    end: date | None = None,
    *,
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE,
    enrollment_id: str = "e1",
    practitioner: str | None = "dr-a",
) -> Enrollment:
    return Enrollment(
        id=enrollment_id,
        patient_id="p1",
        program=Program.RPM,
        status=status,
        start=start,
        end=end,
        billing_practitioner_id=practitioner,
    )


def episode(start: date, end: date | None = None, **kwargs: object) -> Episode:
    found = Episode.of(
        enrollment(start, end, **kwargs),  # type: ignore[arg-type]
        first_day=start,
        consent_on=start,
    )
    assert found is not None
    return found


def days_from(first: date, count: int, *, every: int = 1) -> list[date]:
    return [first + timedelta(days=every * n) for n in range(count)]


def outcomes(judged: PeriodJudgement) -> dict[str, tuple[bool, str]]:
    return {c.code: (c.earned, c.explanation) for c in judged.codes}


def judge_days(start: date, count: int) -> PeriodJudgement:
    ep = episode(start)
    days = count_days(ep, days_from(start, count))
    (judged,) = judge_month(ep, days=days, month=(start.year, start.month), rules_of=rules_of)
    return judged


# -- CY2026: 99454 at 16-30 days, 99445 at 2-15, 99453 once from 2 days --------------------

MARCH_2026 = date(2026, 3, 1)
P1_2026 = "(period 1, 2026-03-01 to 2026-03-30)"


def test_cy2026_one_day_earns_nothing() -> None:
    assert outcomes(judge_days(MARCH_2026, 1)) == {
        "99453": (False, f"1 day with readings of 2 {P1_2026}"),
        "99454": (False, f"1 day with readings of 16 {P1_2026}"),
        "99445": (False, f"1 day with readings of 2 {P1_2026}"),
    }


def test_cy2026_two_days_earn_99445_and_setup() -> None:
    judged = judge_days(MARCH_2026, 2)

    assert judged.earned == ("99453", "99445")
    assert outcomes(judged)["99454"] == (False, f"2 days with readings of 16 {P1_2026}")
    assert outcomes(judged)["99445"] == (True, f"2 days with readings {P1_2026}")


def test_cy2026_fifteen_days_earn_99445_not_99454() -> None:
    judged = judge_days(MARCH_2026, 15)

    assert judged.earned == ("99453", "99445")
    assert outcomes(judged)["99454"] == (False, f"15 days with readings of 16 {P1_2026}")


def test_cy2026_sixteen_days_earn_99454_not_99445() -> None:
    judged = judge_days(MARCH_2026, 16)

    assert judged.earned == ("99453", "99454")
    assert outcomes(judged)["99445"] == (
        False,
        f"16 days with readings, more than 15 {P1_2026}",
    )


def test_cy2026_thirty_days_earn_99454() -> None:
    judged = judge_days(MARCH_2026, 30)

    assert judged.days == 30
    assert judged.earned == ("99453", "99454")
    assert outcomes(judged)["99453"] == (True, f"once per episode, 30 days with readings {P1_2026}")


# -- CY2025: 99454 at 16-30, no 99445, 99453 from 16 days ---------------------------------

MARCH_2025 = date(2025, 3, 1)
P1_2025 = "(period 1, 2025-03-01 to 2025-03-30)"


@pytest.mark.parametrize("count", [1, 2, 15])
def test_cy2025_below_sixteen_days_earns_nothing(count: int) -> None:
    judged = judge_days(MARCH_2025, count)
    days = f"{count} day{'' if count == 1 else 's'} with readings"

    assert judged.rule_year == 2025
    assert outcomes(judged) == {
        "99453": (False, f"{days} of 16 {P1_2025}"),
        "99454": (False, f"{days} of 16 {P1_2025}"),
    }


@pytest.mark.parametrize("count", [16, 30])
def test_cy2025_sixteen_or_more_days_earn_99454_and_setup(count: int) -> None:
    judged = judge_days(MARCH_2025, count)

    assert judged.earned == ("99453", "99454")
    assert "99445" not in outcomes(judged)


# -- days ----------------------------------------------------------------------------------


def test_two_readings_on_one_day_are_one_day() -> None:
    ep = episode(MARCH_2026)
    day = date(2026, 3, 4)

    assert count_days(ep, [day, day, day, date(2026, 3, 5)]) == {1: 2}


def test_days_outside_the_episode_count_for_nothing() -> None:
    ep = episode(MARCH_2026, end=date(2026, 3, 20))

    assert count_days(ep, [date(2026, 2, 28), date(2026, 3, 20), date(2026, 3, 21)]) == {1: 1}


def test_the_episode_starts_at_the_first_counting_reading_not_the_enrollment() -> None:
    found = Episode.of(enrollment(date(2026, 3, 1)), first_day=date(2026, 3, 10))

    assert found is not None
    assert found.period(1).label == "2026-03-10 to 2026-04-08"


def test_no_reading_no_episode() -> None:
    assert Episode.of(enrollment(MARCH_2026), first_day=None) is None


def test_a_cancelled_enrollment_has_no_episode() -> None:
    cancelled = enrollment(MARCH_2026, status=EnrollmentStatus.CANCELLED)

    assert Episode.of(cancelled, first_day=MARCH_2026) is None


# -- months --------------------------------------------------------------------------------


def test_a_period_crossing_a_month_boundary_is_judged_in_the_month_it_ends_in() -> None:
    ep = episode(date(2026, 10, 3))  # period 1: 2026-10-03 to 2026-11-01
    days = count_days(ep, days_from(date(2026, 10, 3), 20))  # 2026-10-03 .. 2026-10-22

    october = judge_month(ep, days=days, month=(2026, 10), rules_of=rules_of)
    november = judge_month(ep, days=days, month=(2026, 11), rules_of=rules_of)

    assert october == []
    assert [(j.period.label, j.days, j.earned) for j in november] == [
        ("2026-10-03 to 2026-11-01", 20, ("99453", "99454"))
    ]


def test_two_periods_can_end_in_one_month_each_judged_once() -> None:
    # Period 1: 2025-12-03 to 2026-01-01; period 2: 2026-01-02 to 2026-01-31.
    ep = episode(date(2025, 12, 3))
    readings = days_from(date(2025, 12, 3), 16, every=1) + days_from(date(2026, 1, 2), 5)
    days = count_days(ep, readings)

    january = judge_month(ep, days=days, month=(2026, 1), rules_of=rules_of)
    december = judge_month(ep, days=days, month=(2025, 12), rules_of=rules_of)

    assert december == []
    assert [(j.period.number, j.rule_year, j.days, j.earned) for j in january] == [
        (1, 2026, 16, ("99453", "99454")),
        (2, 2026, 5, ("99445",)),  # 99453 once per episode: not listed again
    ]


def test_setup_waits_for_the_first_period_reaching_its_days_by_that_periods_rule_year() -> None:
    # Period 1: 2025-11-20 to 2025-12-19 (CY2025, 10 days: no 99453 below 16);
    # period 2: 2025-12-20 to 2026-01-18 (CY2026: 5 days earn 99445 and 99453).
    ep = episode(date(2025, 11, 20))
    days = count_days(ep, days_from(date(2025, 11, 20), 10) + days_from(date(2025, 12, 20), 5))

    (first,) = judge_month(ep, days=days, month=(2025, 12), rules_of=rules_of)
    (second,) = judge_month(ep, days=days, month=(2026, 1), rules_of=rules_of)

    assert outcomes(first)["99453"] == (
        False,
        "10 days with readings of 16 (period 1, 2025-11-20 to 2025-12-19)",
    )
    assert second.earned == ("99453", "99445")


def test_setup_is_billed_once_per_episode() -> None:
    ep = episode(MARCH_2026)
    days = count_days(ep, days_from(MARCH_2026, 60))  # every day of periods 1 and 2

    (march,) = judge_month(ep, days=days, month=(2026, 3), rules_of=rules_of)
    (april,) = judge_month(ep, days=days, month=(2026, 4), rules_of=rules_of)

    assert march.earned == ("99453", "99454")
    assert april.earned == ("99454",)
    assert "99453" not in outcomes(april)


def test_a_new_enrollment_after_a_gap_is_a_new_episode_with_its_own_setup() -> None:
    first = episode(date(2026, 1, 1), end=date(2026, 2, 15), enrollment_id="e1")
    second = episode(date(2026, 4, 1), enrollment_id="e2")
    readings = days_from(date(2026, 1, 1), 45) + days_from(date(2026, 4, 1), 20)

    (ended,) = judge_month(
        first, days=count_days(first, readings), month=(2026, 2), rules_of=rules_of
    )
    (again,) = judge_month(
        second, days=count_days(second, readings), month=(2026, 4), rules_of=rules_of
    )

    # The first episode's period 2 stops at the enrollment's end: 2026-01-31 to 2026-02-15.
    assert (ended.period.label, ended.days, ended.earned) == (
        "2026-01-31 to 2026-02-15",
        15,
        ("99445",),
    )
    assert again.earned == ("99453", "99454")


def test_without_a_billing_practitioner_a_period_earns_nothing_and_says_why() -> None:
    ep = episode(MARCH_2026, practitioner=None)
    days = count_days(ep, days_from(MARCH_2026, 20))

    (judged,) = judge_month(ep, days=days, month=(2026, 3), rules_of=rules_of)

    assert judged.earned == ()
    assert outcomes(judged)["99454"] == (
        False,
        f"no billing practitioner on the enrollment {P1_2026}",
    )


def test_consent_after_the_period_blocks_it() -> None:
    found = Episode.of(enrollment(MARCH_2026), first_day=MARCH_2026, consent_on=date(2026, 4, 2))
    assert found is not None
    days = count_days(found, days_from(MARCH_2026, 20))

    (judged,) = judge_month(found, days=days, month=(2026, 3), rules_of=rules_of)

    assert outcomes(judged)["99454"] == (
        False,
        f"consent dated 2026-04-02, after this period {P1_2026}",
    )


def test_a_period_with_no_readings_is_still_explained() -> None:
    ep = episode(MARCH_2026)

    (april,) = judge_month(ep, days={1: 20}, month=(2026, 4), rules_of=rules_of)

    assert april.days == 0
    assert outcomes(april)["99454"] == (
        False,
        "0 days with readings of 16 (period 2, 2026-03-31 to 2026-04-29)",
    )


def test_a_year_without_a_rule_file_is_judged_by_the_latest_year_before_it(
    tmp_path: Path,
) -> None:
    # Time passes: with only cy2025.yaml and cy2026.yaml, a period ending in March 2027 uses
    # CY2026's device codes.
    for year in (2025, 2026):
        shutil.copy(rule_file(year), tmp_path / rule_file(year).name)
    ep = episode(date(2027, 3, 1))
    days = count_days(ep, days_from(date(2027, 3, 1), 5))

    (judged,) = judge_month(
        ep,
        days=days,
        month=(2027, 3),
        rules_of=lambda year: latest_rule_year(year, rules_dir=tmp_path),
    )

    assert (judged.rule_year, judged.earned) == (2026, ("99453", "99445"))
