"""RPM monitoring over HTTP: the care manager's worklist lists device days out of reach, days
without readings and values outside a goal's target; the month-end report lists the device
codes. On SQLite and PostgreSQL; the clock says 2026-10-15 (practice time zone UTC).

pat-north-1: RPM from 2026-09-21, readings every other day up to 2026-10-07 (9 days). Period 1
runs 2026-09-21 to 2026-10-20; today is its day 25 and six days are left: 15 < 16.
pat-north-2: RPM from 2026-10-01, a reading every day up to 2026-10-12 (12 days), the last a
blood pressure of 162/85; an active goal keeps systolic under 140.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhirbridge.domain import (
    ConsentMethod,
    ConsentStatus,
    DeviceReading,
    Enrollment,
    EnrollmentStatus,
    Goal,
    GoalLifecycle,
    GoalTarget,
    Program,
    ProgramConsent,
)
from fhirbridge.domain.codes import Code
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.persistence.scratch import Backend
from tests.api.support import Tokens, billing, care_manager
from tests.sessions import session_factory


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


def _rpm(patient_id: str, start: date) -> list[Any]:
    enrollment_id = f"enr-{patient_id}-rpm"
    return [
        Enrollment(
            id=enrollment_id,
            patient_id=patient_id,
            program=Program.RPM,
            status=EnrollmentStatus.ACTIVE,
            start=start,
            care_manager_id="cm-north",
            billing_practitioner_id="sup-north",
        ),
        ProgramConsent(
            id=f"con-{patient_id}-rpm",
            patient_id=patient_id,
            enrollment_id=enrollment_id,
            program=Program.RPM,
            status=ConsentStatus.ACTIVE,
            given_on=start,
            method=ConsentMethod.VERBAL,
            recorded_by_id="cm-north",
        ),
    ]


def _blood_pressure(patient_id: str, day: date, systolic: int, diastolic: int) -> DeviceReading:
    return DeviceReading(
        id=f"rd-{patient_id}-{day.isoformat()}",
        patient_id=patient_id,
        code="85354-9",
        effective_at=datetime.combine(day, time(8, 0), tzinfo=UTC),
        day=day,
        value=Decimal(systolic),
        second_value=Decimal(diastolic),
        unit="mm[Hg]",
        device="Device/cuff-1",
        source_system="urn:test:hub",
        source_value=f"{patient_id}-{day.isoformat()}",
    )


@pytest.fixture
def monitored(database_url: str) -> str:
    north_1 = [date(2026, 9, 21) + timedelta(days=2 * n) for n in range(9)]
    north_2 = [date(2026, 10, 1) + timedelta(days=n) for n in range(12)]
    readings = [_blood_pressure("pat-north-1", d, 128, 80) for d in north_1]
    readings += [_blood_pressure("pat-north-2", d, 132, 84) for d in north_2[:-1]]
    readings.append(_blood_pressure("pat-north-2", north_2[-1], 162, 85))
    goal = Goal(
        id="goal-north-2-bp",
        patient_id="pat-north-2",
        lifecycle_status=GoalLifecycle.ACTIVE,
        description="blood pressure under 140/90",
        target=GoalTarget(measure=Code("loinc", "8480-6"), high=Decimal(140), unit="mm[Hg]"),
    )
    engine = make_engine(database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            store = Store(session)
            for record in [
                *_rpm("pat-north-1", date(2026, 9, 21)),
                *_rpm("pat-north-2", date(2026, 10, 1)),
                goal,
            ]:
                store.save(record)
            store.device_readings.ingest(readings)
    finally:
        engine.dispose()
    return database_url


def _monitoring_items(client: TestClient, tokens: Tokens) -> list[dict[str, Any]]:
    response = client.get("/worklist", headers=tokens.headers(**care_manager()))
    assert response.status_code == 200, response.text
    kinds = {"device-days", "no-readings", "out-of-range"}
    return [item for item in response.json()["items"] if item["kind"] in kinds]


@pytest.mark.usefixtures("monitored")
def test_a_period_that_cannot_reach_16_days_is_on_the_worklist(
    client: TestClient, tokens: Tokens
) -> None:
    items = _monitoring_items(client, tokens)

    (short,) = [i for i in items if i["kind"] == "device-days"]
    assert short["patient_id"] == "pat-north-1"
    assert short["summary"] == "day 25 of 30, 9 days with readings: cannot reach 16"
    assert (short["code"], short["days_with_readings"], short["period_day"]) == ("99454", 9, 25)
    assert short["due_on"] == "2026-10-20"


@pytest.mark.usefixtures("monitored")
def test_days_without_readings_are_on_the_worklist(client: TestClient, tokens: Tokens) -> None:
    items = _monitoring_items(client, tokens)

    quiet = {i["patient_id"]: i["summary"] for i in items if i["kind"] == "no-readings"}
    assert quiet == {
        "pat-north-1": "no readings for 8 days (last on 2026-10-07)",
        "pat-north-2": "no readings for 3 days (last on 2026-10-12)",
    }


@pytest.mark.usefixtures("monitored")
def test_a_value_outside_the_goal_target_is_urgent(client: TestClient, tokens: Tokens) -> None:
    items = _monitoring_items(client, tokens)

    (high,) = [i for i in items if i["kind"] == "out-of-range"]
    assert high["patient_id"] == "pat-north-2"
    assert high["summary"] == (
        "values outside target: systolic 162 above 140 (goal: blood pressure under 140/90)"
    )
    assert (high["urgency"], high["record_id"]) == ("urgent", "rd-pat-north-2-2026-10-12")


@pytest.mark.usefixtures("monitored")
def test_the_month_end_report_lists_the_device_codes_of_periods_ending_in_the_month(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.get(
        "/reports/billing",
        params={"month": "2026-10", "team": "north", "format": "csv"},
        headers=tokens.headers(**billing()),
    )

    assert response.status_code == 200, response.text
    rpm = [
        line.split(",")
        for line in response.text.splitlines()
        if ",RPM,99453," in line or ",RPM,99454," in line or ",RPM,99445," in line
    ]
    rows = [(r[1], r[3], r[4], r[5], r[6]) for r in rpm]
    assert rows == [
        ("pat-north-1", "99453", "earned", "1", "sup-north"),
        ("pat-north-1", "99454", "not-earned", "", ""),
        ("pat-north-1", "99445", "earned", "1", "sup-north"),
        ("pat-north-2", "99453", "earned", "1", "sup-north"),
        ("pat-north-2", "99454", "not-earned", "", ""),
        ("pat-north-2", "99445", "earned", "1", "sup-north"),
    ]
    assert "12 days with readings of 16 (period 1, 2026-10-01 to 2026-10-30)" in response.text
