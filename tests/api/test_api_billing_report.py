"""The month-end billing report over HTTP: JSON and CSV, for billing credentials only."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from tests.api.support import Tokens, billing, care_manager, time_entry_body


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
    # The fixture enrollment lists no chronic conditions: CCM is explained, not earned.
    ccm = by_code[("pat-north-1", "99490")]
    assert (ccm["outcome"], ccm["explanation"]) == (
        "not-earned",
        "0 of 2 chronic conditions on the enrollment",
    )


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
