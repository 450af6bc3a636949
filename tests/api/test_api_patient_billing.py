"""GET /patients/{id}/billing: one patient's month explained entry by entry, on SQLite and
PostgreSQL. Data: fixtures/billing/set-aside/north-2-october.yaml over the API caseload."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhirbridge.persistence.scratch import Backend
from tests.api.billing_fixtures import store_north_2_october
from tests.api.program_fixtures import (
    store_apcm_with_ccm_minutes_october,
    store_rpm_october,
    store_tcm_march,
)
from tests.api.support import Tokens, billing, care_manager, supervisor

URL = "/patients/pat-north-2/billing"
OCTOBER = {"month": "2026-10"}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def october(client: TestClient, tokens: Tokens, database_url: str) -> dict[str, Any]:
    store_north_2_october(database_url)
    response = client.get(URL, params=OCTOBER, headers=tokens.headers(**billing()))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_entry_of_the_month_is_counted_or_set_aside_with_its_reason(
    october: dict[str, Any],
) -> None:
    assert [
        (e["entry_id"], e["outcome"], e["minutes"], e["reason"]) for e in october["entries"]
    ] == [
        ("te-n2-imported", "set-aside", 0, "before consent on 2026-10-10"),
        ("te-n2-rn", "counted", 15, None),
        ("te-n2-staff", "counted", 10, None),
        ("te-n2-error", "set-aside", 0, "entered in error"),
        ("te-n2-chw", "set-aside", 0, "no CCM code counts time of chw"),
        ("te-n2-bhi", "set-aside", 0, "enrollment enr-north-2-bhi is cancelled"),
        ("te-n2-after", "set-aside", 0, "after enrollment enr-north-2-ccm ended on 2026-10-20"),
    ]


def test_counted_entries_name_the_codes_their_minutes_earned(october: dict[str, Any]) -> None:
    codes = {e["entry_id"]: e["codes"] for e in october["entries"]}

    assert (codes["te-n2-rn"], codes["te-n2-staff"], codes["te-n2-error"]) == (
        ["99490"],
        ["99490"],
        [],
    )


def test_counted_minutes_are_totalled_per_program(october: dict[str, Any]) -> None:
    assert october["programs"] == [{"program": "CCM", "minutes": 25, "entries": 2}]


def test_codes_earned_and_not_earned_come_with_their_explanation(
    october: dict[str, Any],
) -> None:
    assert october["earned"] == [
        {
            "code": "99490",
            "units": 1,
            "practitioner_id": "sup-north",
            "minutes": 25,
            "entry_ids": ["te-n2-rn", "te-n2-staff"],
            "note": None,
        }
    ]
    reasons = {n["code"]: n["reason"] for n in october["not_earned"]}
    assert reasons["99439"] == "5 of the next 20 minutes"
    assert reasons["99484"] == "no active BHI enrollment this month"


def test_the_answer_names_month_time_zone_and_rule_year(october: dict[str, Any]) -> None:
    assert (october["patient_id"], october["month"], october["time_zone"]) == (
        "pat-north-2",
        "2026-10",
        "UTC",
    )
    assert october["rule_year"] == 2026


def test_a_care_manager_of_the_team_may_read_it(client: TestClient, tokens: Tokens) -> None:
    response = client.get(URL, params=OCTOBER, headers=tokens.headers(**care_manager()))

    assert response.status_code == 200
    assert response.json()["patient_id"] == "pat-north-2"


def test_another_teams_patient_answers_byte_for_byte_as_a_missing_one(
    client: TestClient, tokens: Tokens
) -> None:
    south = tokens.headers(**supervisor(team="south"))

    theirs = client.get(URL, params=OCTOBER, headers=south)
    missing = client.get("/patients/no-such-patient/billing", params=OCTOBER, headers=south)

    assert theirs.status_code == missing.status_code == 404
    assert theirs.headers["content-type"] == "application/problem+json"
    assert theirs.content.replace(b"pat-north-2", b"no-such-patient") == missing.content


def test_another_teams_patient_answers_404_even_for_a_year_without_rules(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.get(
        URL,
        params={"month": "2027-01"},
        headers=tokens.headers(**care_manager("cm-south", "south")),
    )

    assert response.status_code == 404


def test_a_month_without_a_rule_file_is_a_problem_naming_the_file_and_the_command(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.get(URL, params={"month": "2027-01"}, headers=tokens.headers(**billing()))

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "month"
    assert "cy2027.yaml" in error["reason"]
    assert "fhirbridge billing rules new-year 2027" in error["reason"]


@pytest.mark.parametrize("month", ["2026-13", "0001-01", "9999-12", "2026-1", "october"])
def test_a_month_that_is_not_yyyy_mm_from_1900_to_2100_is_a_problem_naming_month(
    client: TestClient, tokens: Tokens, month: str
) -> None:
    response = client.get(URL, params={"month": month}, headers=tokens.headers(**billing()))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "month" in response.json()["errors"][0]["field"]


# -- programs billed outside the time roll-up (TCM, RPM device days, APCM) -----------------


def _billing_of(client: TestClient, tokens: Tokens, patient_id: str, month: str) -> Any:
    response = client.get(
        f"/patients/{patient_id}/billing",
        params={"month": month},
        headers=tokens.headers(**billing()),
    )
    assert response.status_code == 200, response.text
    return response.json()


def _program_line(body: dict[str, Any], code: str) -> dict[str, Any]:
    (line,) = [line for line in body["program_lines"] if line["code"] == code]
    return line


def test_a_month_without_programs_outside_the_roll_up_lists_no_program_lines(
    october: dict[str, Any],
) -> None:
    assert october["program_lines"] == []


def test_an_rpm_period_with_16_device_days_shows_99454_earned_with_its_explanation(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    store_rpm_october(database_url, days=18)

    body = _billing_of(client, tokens, "pat-north-2", "2026-10")

    assert _program_line(body, "99454") == {
        "program": "RPM",
        "code": "99454",
        "earned": True,
        "units": 1,
        "practitioner_id": "sup-north",
        "explanation": "18 days with readings (period 1, 2026-10-01 to 2026-10-30)",
    }


def test_a_tcm_period_completed_in_the_month_shows_its_code_earned(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    store_tcm_march(database_url)

    body = _billing_of(client, tokens, "pat-north-1", "2026-03")

    line = _program_line(body, "99495")
    assert (line["program"], line["earned"], line["units"], line["practitioner_id"]) == (
        "TCM",
        True,
        1,
        "sup-north",
    )


def test_apcm_in_the_month_shows_ccm_excluded_as_the_month_end_report_does(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    store_apcm_with_ccm_minutes_october(database_url)

    body = _billing_of(client, tokens, "pat-north-1", "2026-10")
    report = client.get(
        "/reports/billing",
        params={"month": "2026-10", "team": "north", "format": "csv"},
        headers=tokens.headers(**billing()),
    )

    assert report.status_code == 200, report.text
    rows = [r for r in csv.DictReader(io.StringIO(report.text)) if r["patient_id"] == "pat-north-1"]
    in_report = {r["code"]: (r["outcome"], r["explanation"]) for r in rows if r["code"]}
    assert _program_line(body, "G0557")["earned"]
    assert in_report["G0557"][0] == "earned"
    reasons = {n["code"]: n["reason"] for n in body["not_earned"]}
    assert reasons["99490"] == "excluded by G0557 for the same patient"
    assert in_report["99490"] == ("not-earned", reasons["99490"])
    assert body["earned"] == []
