"""Days with device readings counted in SQL (``store.device_days``) equal the pure count
(``count_days``), and the RPM program source bills from them, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.billing import load_rule_year
from fhirbridge.billing.device_days import EPISODE_STATUSES, Episode, count_days
from fhirbridge.domain import (
    ConsentMethod,
    ConsentStatus,
    DeviceReading,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
)
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.services.billing import monthly_report
from fhirbridge.services.monitoring_billing import rpm_device_days
from tests.billing.billing_db import BACKENDS, billing_database, empty, people, store_all

TZ = ZoneInfo("America/New_York")
RULES = load_rule_year(2026)
START = date(2026, 10, 3)


@pytest.fixture(scope="module", params=BACKENDS)
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    with billing_database(request.param, tmp_path_factory.mktemp("device-days")) as factory:
        yield factory


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    empty(sessions)
    store_all(sessions, people(["p1", "p2"], ["dr-a", "s-1"]))
    return sessions


def rpm(
    enrollment_id: str = "e1",
    patient_id: str = "p1",
    start: date = START,
    end: date | None = None,
) -> list[Enrollment | ProgramConsent]:
    return [
        Enrollment(
            id=enrollment_id,
            patient_id=patient_id,
            program=Program.RPM,
            status=EnrollmentStatus.ACTIVE,
            start=start,
            end=end,
            billing_practitioner_id="dr-a",
        ),
        ProgramConsent(
            id=f"c-{enrollment_id}",
            patient_id=patient_id,
            enrollment_id=enrollment_id,
            program=Program.RPM,
            status=ConsentStatus.ACTIVE,
            given_on=start,
            method=ConsentMethod.VERBAL,
            recorded_by_id="s-1",
        ),
    ]


_serial = iter(range(10**9))


def reading(
    day: date, *, patient_id: str = "p1", manual: bool = False, at: time = time(9, 0)
) -> DeviceReading:
    local = datetime.combine(day, at, tzinfo=TZ)
    return DeviceReading(
        id=f"r{next(_serial)}",
        patient_id=patient_id,
        code="85354-9",
        effective_at=local.astimezone(UTC),
        day=day,
        value=None,
        manual=manual,
        source_system="urn:test:hub",
        source_value=f"obs-{next(_serial)}",
    )


def ingest(sessions: sessionmaker[Session], readings: Sequence[DeviceReading]) -> None:
    with unit_of_work(sessions) as session:
        Store(session).device_readings.ingest(readings, report=False)


def sql_counts(sessions: sessionmaker[Session], until: date) -> dict[str, dict[int, int]]:
    with unit_of_work(sessions) as session:
        rows = Store(session).device_days.period_days(until=until, statuses=EPISODE_STATUSES)
        found: dict[str, dict[int, int]] = {}
        for row in rows:
            found.setdefault(row.enrollment_id, {})[row.number] = row.days
        return found


def first_day(sessions: sessionmaker[Session], until: date) -> dict[str, date | None]:
    with unit_of_work(sessions) as session:
        episodes = Store(session).device_days.episodes(until=until, statuses=EPISODE_STATUSES)
        return {e.enrollment_id: e.first_day for e in episodes}


def test_periods_count_distinct_days_and_skip_manual_readings(
    db: sessionmaker[Session],
) -> None:
    store_all(db, rpm())
    days = [START + timedelta(days=n) for n in range(0, 40, 2)]  # 20 days, 10-03 .. 11-10
    ingest(
        db,
        [reading(d) for d in days]
        + [reading(d, at=time(21, 30)) for d in days[:5]]  # a second reading: same day
        + [reading(START + timedelta(days=1), manual=True)],  # typed in: no day
    )

    assert sql_counts(db, date(2026, 11, 30)) == {"e1": {1: 15, 2: 5}}


def test_the_first_day_of_monitoring_is_the_first_counting_reading_after_the_start(
    db: sessionmaker[Session],
) -> None:
    store_all(db, rpm(start=date(2026, 10, 1)))
    ingest(
        db,
        [
            reading(date(2026, 9, 30)),  # before the enrollment
            reading(date(2026, 10, 2), manual=True),  # typed in
            reading(date(2026, 10, 5)),
        ],
    )

    assert first_day(db, date(2026, 10, 31)) == {"e1": date(2026, 10, 5)}


def test_the_reading_day_fixed_at_ingest_decides_not_the_utc_date(
    db: sessionmaker[Session],
) -> None:
    store_all(db, rpm())
    # 2026-10-04 22:30 in New York is 2026-10-05 02:30 UTC: the practice's day is the 4th.
    late = reading(date(2026, 10, 4), at=time(22, 30))
    assert late.effective_at.date() == date(2026, 10, 5)
    ingest(db, [reading(START), late, reading(date(2026, 10, 4), at=time(7, 0))])

    assert sql_counts(db, date(2026, 10, 31)) == {"e1": {1: 2}}


def test_readings_after_the_enrollment_ends_count_for_nothing(
    db: sessionmaker[Session],
) -> None:
    store_all(db, rpm(end=date(2026, 10, 10)))
    ingest(db, [reading(START + timedelta(days=n)) for n in range(20)])

    assert sql_counts(db, date(2026, 11, 30)) == {"e1": {1: 8}}


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    offsets=st.lists(st.integers(min_value=-5, max_value=95), max_size=40),
    manual=st.lists(st.booleans(), max_size=40),
    end=st.one_of(st.none(), st.integers(min_value=0, max_value=90)),
)
def test_sql_counts_equal_the_pure_count(
    db: sessionmaker[Session], offsets: list[int], manual: list[bool], end: int | None
) -> None:
    empty(db)
    store_all(db, people(["p1"], ["dr-a", "s-1"]))
    end_on = None if end is None else START + timedelta(days=end)
    enrollments = rpm(end=end_on)
    store_all(db, enrollments)
    readings = [
        reading(START + timedelta(days=n), manual=manual[i] if i < len(manual) else False)
        for i, n in enumerate(offsets)
    ]
    ingest(db, readings)
    until = date(2026, 12, 31)

    counting = [r.day for r in readings if not r.manual and r.day >= START]
    counting = [d for d in counting if d <= until and (end_on is None or d <= end_on)]
    enrollment = enrollments[0]
    assert isinstance(enrollment, Enrollment)
    episode = Episode.of(enrollment, first_day=min(counting, default=None))
    expected = {} if episode is None else {"e1": count_days(episode, counting)}
    assert sql_counts(db, until) == expected


# -- the program source and the month-end report -----------------------------------------


def test_the_report_lists_rpm_lines_in_the_month_the_period_ends(
    db: sessionmaker[Session],
) -> None:
    store_all(db, rpm())  # period 1: 2026-10-03 to 2026-11-01
    ingest(db, [reading(START + timedelta(days=n)) for n in range(12)])

    with unit_of_work(db) as session:
        store = Store(session)
        october = rpm_device_days(
            store, month=(2026, 10), tz=TZ, rules=RULES, patient_ids=None, billed={}
        )
        november = rpm_device_days(
            store, month=(2026, 11), tz=TZ, rules=RULES, patient_ids=None, billed={}
        )

    assert october.lines == ()
    where = "(period 1, 2026-10-03 to 2026-11-01)"
    assert [(x.code, x.earned, x.units, x.explanation) for x in november.lines] == [
        ("99453", True, 1, f"once per episode, 12 days with readings {where}"),
        ("99454", False, 0, f"12 days with readings of 16 {where}"),
        ("99445", True, 1, f"12 days with readings {where}"),
    ]
    assert [(b.code, b.practitioner_id) for b in november.billed["p1"]] == [
        ("99453", "dr-a"),
        ("99445", "dr-a"),
    ]


def test_an_overlapping_second_enrollment_bills_nothing_while_the_first_runs(
    db: sessionmaker[Session],
) -> None:
    store_all(db, rpm("e1") + rpm("e2", start=START + timedelta(days=5)))
    ingest(db, [reading(START + timedelta(days=n)) for n in range(20)])

    with unit_of_work(db) as session:
        month = rpm_device_days(
            Store(session), month=(2026, 11), tz=TZ, rules=RULES, patient_ids=None, billed={}
        )

    assert [(x.code, x.units) for x in month.lines if x.earned] == [("99453", 1), ("99454", 1)]


def test_monthly_report_carries_the_rpm_lines(db: sessionmaker[Session]) -> None:
    store_all(db, rpm())
    ingest(db, [reading(START + timedelta(days=n)) for n in range(20)])

    with unit_of_work(db) as session:
        report = monthly_report(
            Store(session),
            month=(2026, 11),
            tz=TZ,
            rules=RULES,
            sources=(rpm_device_days,),
        )

    device = [x for x in report.for_patient("p1") if x.code in {"99453", "99454", "99445"}]
    assert [(x.program, x.code, x.outcome.value) for x in device] == [
        (Program.RPM, "99453", "earned"),
        (Program.RPM, "99454", "earned"),
        (Program.RPM, "99445", "not-earned"),
    ]
