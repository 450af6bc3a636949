"""The month-end billing report over HTTP: JSON and CSV, for billing credentials only, on
SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from fhirbridge.persistence.scratch import Backend
from tests.api.billing_fixtures import store_north_2_october
from tests.api.support import Tokens, billing, care_manager, time_entry_body

SET_ASIDE_IN_OCTOBER = [
    ("te-n2-imported", "CCM", "before consent on 2026-10-10"),
    ("te-n2-error", "CCM", "entered in error"),
    ("te-n2-chw", "CCM", "no CCM code counts time of chw"),
    ("te-n2-bhi", "BHI", "enrollment enr-north-2-bhi is cancelled"),
    ("te-n2-after", "CCM", "after enrollment enr-north-2-ccm ended on 2026-10-20"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


def _record_25_minutes(client: TestClient, tokens: Tokens) -> None:
    response = client.post(
        "/time-entries", json=time_entry_body(), headers=tokens.headers(**care_manager())
    )
    assert response.status_code == 201, response.text


def test_billing_report_as_json_covers_the_teams_patients(
    client: TestClient, tokens: Tokens
) -> None:
    _record_25_minutes(client, tokens)

    response = client.get(
        "/reports/billing",
        params={"month": "2026-10", "team": "north"},
        headers=tokens.headers(**billing()),
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    lines = response.text
    assert '"99490"' in lines
    assert "pat-north-1" in lines


def test_billing_report_as_csv_explains_codes_not_earned(
    client: TestClient, tokens: Tokens
) -> None:
    _record_25_minutes(client, tokens)

    response = client.get(
        "/reports/billing",
        params={"month": "2026-10", "team": "north", "format": "csv"},
        headers=tokens.headers(**billing()),
    )

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    by_code = {(r["patient_id"], r["code"]): r for r in rows}
    # 25 minutes earn the first 20 (99490); the add-on for each further 20 is explained.
    assert by_code[("pat-north-1", "99490")]["outcome"] == "earned"
    add_on = by_code[("pat-north-1", "99439")]
    assert (add_on["outcome"], add_on["explanation"]) == ("not-earned", "5 of the next 20 minutes")


def test_a_care_manager_may_not_read_the_billing_report(client: TestClient, tokens: Tokens) -> None:
    response = client.get(
        "/reports/billing", params={"month": "2026-10"}, headers=tokens.headers(**care_manager())
    )

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


def test_a_malformed_month_is_a_problem_naming_the_field(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.get(
        "/reports/billing", params={"month": "2026-13"}, headers=tokens.headers(**billing())
    )

    assert response.status_code == 422
    assert "month" in response.text


def test_billing_report_as_json_lists_every_entry_set_aside_with_its_reason(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    store_north_2_october(database_url)

    response = client.get(
        "/reports/billing",
        params={"month": "2026-10", "team": "north"},
        headers=tokens.headers(**billing()),
    )

    assert response.status_code == 200, response.text
    (patient,) = [p for p in response.json()["patients"] if p["patient_id"] == "pat-north-2"]
    assert [(s["entry_id"], s["program"], s["reason"]) for s in patient["set_aside"]] == (
        SET_ASIDE_IN_OCTOBER
    )


def test_billing_report_as_csv_has_a_set_aside_row_per_entry(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    store_north_2_october(database_url)

    response = client.get(
        "/reports/billing",
        params={"month": "2026-10", "team": "north", "format": "csv"},
        headers=tokens.headers(**billing()),
    )

    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    aside = [
        (r["entry_ids"], r["program"], r["explanation"])
        for r in rows
        if r["patient_id"] == "pat-north-2" and r["outcome"] == "set-aside"
    ]
    assert aside == SET_ASIDE_IN_OCTOBER


def test_set_aside_entries_do_not_hide_the_codes_earned_by_the_others(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    store_north_2_october(database_url)

    response = client.get(
        "/reports/billing",
        params={"month": "2026-10", "team": "north", "format": "csv"},
        headers=tokens.headers(**billing()),
    )

    rows = list(csv.DictReader(io.StringIO(response.text)))
    earned = [
        (r["code"], r["units"], r["minutes"], r["entry_ids"])
        for r in rows
        if r["patient_id"] == "pat-north-2" and r["outcome"] == "earned"
    ]
    assert earned == [("99490", "1", "25", "te-n2-rn te-n2-staff")]


@pytest.mark.parametrize(
    ("month", "file"), [("2027-01", "cy2027.yaml"), ("2024-06", "cy2024.yaml")]
)
def test_a_month_without_a_rule_file_is_a_problem_naming_the_file_and_how_to_create_it(
    client: TestClient, tokens: Tokens, month: str, file: str
) -> None:
    response = client.get(
        "/reports/billing",
        params={"month": month, "team": "north"},
        headers=tokens.headers(**billing()),
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["field"] == "month"
    assert file in error["reason"]
    assert f"fhirbridge billing rules new-year {month[:4]}" in error["reason"]


@pytest.mark.parametrize("path", ["/reports/billing", "/reports/minutes"])
@pytest.mark.parametrize("month", ["0001-01", "9999-12", "1899-12", "2101-01"])
def test_a_month_outside_1900_to_2100_is_a_problem_naming_month(
    client: TestClient, tokens: Tokens, path: str, month: str
) -> None:
    response = client.get(
        path, params={"month": month, "team": "north"}, headers=tokens.headers(**billing())
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["month"]
