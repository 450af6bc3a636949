"""How the SQL month aggregation places minutes: month edges in the practice's time zone,
enrollment and consent days, grouping, and which patients it covers. Each test runs on SQLite
and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.billing import RuleYearMismatch, SetAside, load_rule_year
from fhirbridge.billing.aggregate import month_days
from fhirbridge.billing.rollup import COUNTING_STATUSES
from fhirbridge.domain import (
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    StaffRole,
    TimeEntry,
    TimeEntryStatus,
)
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.persistence.readmodels.month_minutes import MinutesGroup
from fhirbridge.services.billing import practice_month
from tests.billing.billing_db import BACKENDS, billing_database, empty, people, store_all

RULES = load_rule_year(2026)
CHICAGO = ZoneInfo("America/Chicago")
OCTOBER = (2026, 10)


@pytest.fixture(scope="module", params=BACKENDS)
def module_sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    with billing_database(request.param, tmp_path_factory.mktemp("billing")) as factory:
        yield factory


@pytest.fixture
def sessions(module_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    empty(module_sessions)
    store_all(module_sessions, people(["p1", "p2"], ["dr-a", "rn-1", "rn-2"]))
    return module_sessions


def _ccm(
    patient: str = "p1",
    *,
    start: date = date(2026, 1, 5),
    end: date | None = None,
    consent_on: date = date(2026, 1, 5),
) -> list[Any]:
    enrollment = Enrollment(
        id=f"{patient}-ccm",
        patient_id=patient,
        program=Program.CCM,
        status=EnrollmentStatus.ACTIVE,
        start=start,
        end=end,
        conditions=["Condition/a", "Condition/b"],
        billing_practitioner_id="dr-a",
    )
    consent = ProgramConsent(
        id=f"{patient}-consent",
        patient_id=patient,
        enrollment_id=enrollment.id,
        program=Program.CCM,
        status=ConsentStatus.ACTIVE,
        given_on=consent_on,
        method=ConsentMethod.VERBAL,
        recorded_by_id="rn-1",
    )
    return [enrollment, consent]


def _entry(
    id: str, start: datetime, minutes: int, *, patient: str = "p1", staff: str = "rn-1"
) -> TimeEntry:
    return TimeEntry(
        id=id,
        status=TimeEntryStatus.FINISHED,
        patient_id=patient,
        enrollment_id=f"{patient}-ccm",
        program=Program.CCM,
        staff_id=staff,
        staff_role=StaffRole.RN,
        start=start,
        minutes=minutes,
    )


def _groups(
    sessions: sessionmaker[Session], month: tuple[int, int], tz: ZoneInfo
) -> list[MinutesGroup]:
    with unit_of_work(sessions) as session:
        return Store(session).month_minutes.groups(month=month, tz=tz, counting=COUNTING_STATUSES)


def _minutes(sessions: sessionmaker[Session], month: tuple[int, int], tz: ZoneInfo) -> int:
    return sum(g.minutes for g in _groups(sessions, month, tz) if g.countable)


def test_an_entry_over_the_month_end_counts_only_its_minutes_inside_each_month(
    sessions: sessionmaker[Session],
) -> None:
    # 23:50 on 31 October in Chicago, for 30 minutes.
    late = datetime(2026, 10, 31, 23, 50, tzinfo=CHICAGO)
    store_all(sessions, [*_ccm(), _entry("t1", late, 30)])

    assert (_minutes(sessions, OCTOBER, CHICAGO), _minutes(sessions, (2026, 11), CHICAGO)) == (
        10,
        20,
    )


def test_the_month_is_the_calendar_month_of_the_practice_time_zone(
    sessions: sessionmaker[Session],
) -> None:
    # 03:30 UTC on 1 November is 22:30 on 31 October in Chicago.
    store_all(sessions, [*_ccm(), _entry("t1", datetime(2026, 11, 1, 3, 30, tzinfo=UTC), 20)])

    assert _minutes(sessions, OCTOBER, CHICAGO) == 20
    assert _minutes(sessions, OCTOBER, ZoneInfo("UTC")) == 0


def test_minutes_after_the_enrollment_end_day_do_not_count(
    sessions: sessionmaker[Session],
) -> None:
    store_all(
        sessions,
        [
            *_ccm(end=date(2026, 10, 15)),
            _entry("on-last-day", datetime(2026, 10, 15, 23, 30, tzinfo=CHICAGO), 45),
            _entry("after", datetime(2026, 10, 16, 9, 0, tzinfo=CHICAGO), 20),
        ],
    )

    assert _minutes(sessions, OCTOBER, CHICAGO) == 30


def test_minutes_before_the_consent_day_do_not_count(sessions: sessionmaker[Session]) -> None:
    store_all(
        sessions,
        [
            *_ccm(consent_on=date(2026, 10, 10)),
            _entry("before", datetime(2026, 10, 9, 10, 0, tzinfo=CHICAGO), 20),
            _entry("across", datetime(2026, 10, 9, 23, 50, tzinfo=CHICAGO), 25),
        ],
    )

    assert _minutes(sessions, OCTOBER, CHICAGO) == 15


def test_a_month_with_a_daylight_saving_change_keeps_its_local_midnights(
    sessions: sessionmaker[Session],
) -> None:
    # Chicago falls back on 1 November 2026: October still ends at local midnight (05:00 UTC).
    store_all(sessions, [*_ccm(), _entry("t1", datetime(2026, 11, 1, 4, 40, tzinfo=UTC), 30)])

    assert _minutes(sessions, OCTOBER, CHICAGO) == 20


def test_entries_group_by_patient_enrollment_role_and_staff_member(
    sessions: sessionmaker[Session],
) -> None:
    day = datetime(2026, 10, 6, 9, 0, tzinfo=CHICAGO)
    store_all(
        sessions,
        [
            *_ccm(),
            _entry("a1", day, 10),
            _entry("a2", day.replace(day=7), 12),
            _entry("b1", day.replace(day=8), 5, staff="rn-2"),
        ],
    )

    groups = _groups(sessions, OCTOBER, CHICAGO)

    assert [(g.staff_id, g.minutes, sorted(i for _, i in g.entries)) for g in groups] == [
        ("rn-1", 22, ["a1", "a2"]),
        ("rn-2", 5, ["b1"]),
    ]


def test_earned_codes_list_the_counted_entries_oldest_first(
    sessions: sessionmaker[Session],
) -> None:
    store_all(
        sessions,
        [
            *_ccm(),
            _entry("z-first", datetime(2026, 10, 2, 9, 0, tzinfo=CHICAGO), 10),
            _entry("a-second", datetime(2026, 10, 3, 9, 0, tzinfo=CHICAGO), 10, staff="rn-2"),
        ],
    )

    with unit_of_work(sessions) as session:
        (result,) = practice_month(Store(session), rules=RULES, month=OCTOBER, tz=CHICAGO).results

    assert result.earned[0].entry_ids == ("z-first", "a-second")


def test_patient_ids_limit_the_month_to_those_patients(sessions: sessionmaker[Session]) -> None:
    october = datetime(2026, 10, 6, 9, 0, tzinfo=CHICAGO)
    store_all(
        sessions,
        [
            *_ccm("p1"),
            *_ccm("p2"),
            _entry("t1", october, 25),
            _entry("t2", october, 25, patient="p2"),
        ],
    )

    with unit_of_work(sessions) as session:
        practice = practice_month(
            Store(session), rules=RULES, month=OCTOBER, tz=CHICAGO, patient_ids=["p2"]
        )

    assert [r.patient_id for r in practice.results] == ["p2"]


def test_rules_of_another_year_are_refused(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session, pytest.raises(RuleYearMismatch):
        practice_month(Store(session), rules=RULES, month=(2025, 10), tz=CHICAGO)


def test_month_days_are_the_first_and_last_day_of_the_month() -> None:
    assert month_days((2028, 2)) == (date(2028, 2, 1), date(2028, 2, 29))
    assert month_days((2026, 12)) == (date(2026, 12, 1), date(2026, 12, 31))


def test_an_entry_naming_another_patients_enrollment_is_set_aside_without_showing_that_patient(
    sessions: sessionmaker[Session],
) -> None:
    october = datetime(2026, 10, 6, 9, 0, tzinfo=CHICAGO)
    stray = replace(_entry("stray", october, 25), enrollment_id="p2-ccm")
    store_all(sessions, [*_ccm("p1"), *_ccm("p2"), stray])

    with unit_of_work(sessions) as session:
        practice = practice_month(
            Store(session), rules=RULES, month=OCTOBER, tz=CHICAGO, patient_ids=["p1"]
        )

    (result,) = practice.results
    assert (result.patient_id, result.set_aside) == (
        "p1",
        (SetAside("stray", "enrollment p2-ccm not found"),),
    )


def test_entries_set_aside_are_listed_oldest_first_with_their_reason(
    sessions: sessionmaker[Session],
) -> None:
    day = datetime(2026, 10, 6, 9, 0, tzinfo=CHICAGO)
    store_all(
        sessions,
        [
            *_ccm(consent_on=date(2026, 10, 10)),
            replace(
                _entry("voided", day.replace(day=20), 30), status=TimeEntryStatus.ENTERED_IN_ERROR
            ),
            _entry("imported", day, 20),
            replace(_entry("no-enrollment", day.replace(day=12), 20), enrollment_id=None),
        ],
    )

    with unit_of_work(sessions) as session:
        (result,) = practice_month(Store(session), rules=RULES, month=OCTOBER, tz=CHICAGO).results

    assert result.set_aside == (
        SetAside("imported", "before consent on 2026-10-10"),
        SetAside("no-enrollment", "incomplete entry: no enrollment"),
        SetAside("voided", "entered in error"),
    )
