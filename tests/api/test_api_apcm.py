"""APCM over HTTP: the QMB and condition periods that fix a month's tier, and the report lines
that explain it, on SQLite and PostgreSQL.

Scenario (hand-computed): pat-north-2 enrolled in APCM from 2026-01-05 with Condition/a,
billed by sup-north; Condition/b added on 2026-06-15; QMB from 2026-09-10. The tier day is the
month's last day: May G0556, June G0557, September G0558.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhirbridge.persistence.scratch import Backend
from tests.api.bodies import enrollment_body
from tests.api.support import Tokens, billing, care_manager

NORTH = care_manager()
SOUTH = care_manager(staff_id="cm-south", team="south")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def apcm_id(client: TestClient, tokens: Tokens) -> str:
    body = enrollment_body(
        program="APCM",
        start="2026-01-05",
        conditions=["Condition/a"],
        consent={"given_on": "2026-01-05", "method": "verbal"},
    )
    response = client.post("/enrollments", json=body, headers=tokens.headers(**NORTH))
    assert response.status_code == 201, response.text
    enrollment_id: str = response.json()["id"]
    return enrollment_id


def _put(
    client: TestClient, tokens: Tokens, url: str, periods: list[dict[str, Any]], **who: Any
) -> Any:
    return client.put(url, json={"periods": periods}, headers=tokens.headers(**(who or NORTH)))


def _apcm_rows(client: TestClient, tokens: Tokens, month: str) -> list[dict[str, str]]:
    response = client.get(
        "/reports/billing",
        params={"month": month, "team": "north", "format": "csv"},
        headers=tokens.headers(**billing()),
    )
    assert response.status_code == 200, response.text
    rows = csv.DictReader(io.StringIO(response.text))
    return [r for r in rows if r["patient_id"] == "pat-north-2" and r["program"] == "APCM"]


def test_condition_and_qmb_periods_change_the_tier_by_month(
    client: TestClient, tokens: Tokens, apcm_id: str
) -> None:
    added = _put(
        client,
        tokens,
        f"/enrollments/{apcm_id}/condition-periods",
        [{"condition": "Condition/b", "start": "2026-06-15"}],
    )
    qmb = _put(client, tokens, "/patients/pat-north-2/qmb-periods", [{"start": "2026-09-10"}])
    assert (added.status_code, qmb.status_code) == (200, 200)

    tiers = {
        month: [
            (r["code"], r["outcome"], r["explanation"]) for r in _apcm_rows(client, tokens, month)
        ]
        for month in ("2026-05", "2026-06", "2026-09")
    }

    assert tiers == {
        "2026-05": [
            ("G0556", "earned", "1 chronic condition on 2026-05-31 (Condition/a), not QMB")
        ],
        "2026-06": [
            (
                "G0557",
                "earned",
                "2 chronic conditions on 2026-06-30 (Condition/a, Condition/b), not QMB",
            )
        ],
        "2026-09": [
            (
                "G0558",
                "earned",
                "2 chronic conditions on 2026-09-30 (Condition/a, Condition/b), QMB",
            )
        ],
    }


def test_the_report_line_names_the_billing_practitioner(
    client: TestClient, tokens: Tokens, apcm_id: str
) -> None:
    (row,) = _apcm_rows(client, tokens, "2026-05")

    assert (row["units"], row["practitioner_id"]) == ("1", "sup-north")


def test_periods_read_back_as_sent(client: TestClient, tokens: Tokens, apcm_id: str) -> None:
    _put(
        client,
        tokens,
        "/patients/pat-north-2/qmb-periods",
        [{"start": "2026-09-10", "end": "2026-12-31"}],
    )

    response = client.get("/patients/pat-north-2/qmb-periods", headers=tokens.headers(**NORTH))

    assert response.status_code == 200
    assert response.json() == {
        "patient_id": "pat-north-2",
        "periods": [{"start": "2026-09-10", "end": "2026-12-31"}],
    }


def test_a_period_ending_before_it_starts_is_refused_naming_the_field(
    client: TestClient, tokens: Tokens
) -> None:
    response = _put(
        client,
        tokens,
        "/patients/pat-north-2/qmb-periods",
        [{"start": "2026-09-10", "end": "2026-09-01"}],
    )

    assert response.status_code == 422
    assert "periods[0].end" in response.text


def test_overlapping_periods_of_one_condition_are_refused(
    client: TestClient, tokens: Tokens, apcm_id: str
) -> None:
    response = _put(
        client,
        tokens,
        f"/enrollments/{apcm_id}/condition-periods",
        [
            {"condition": "Condition/b", "start": "2026-06-15"},
            {"condition": "Condition/b", "start": "2026-08-01", "end": "2026-08-31"},
        ],
    )

    assert response.status_code == 422
    assert "periods[1].start" in response.text


def test_a_condition_period_must_name_a_condition(
    client: TestClient, tokens: Tokens, apcm_id: str
) -> None:
    response = _put(
        client,
        tokens,
        f"/enrollments/{apcm_id}/condition-periods",
        [{"condition": "Observation/x", "start": "2026-06-15"}],
    )

    assert response.status_code == 422
    assert "periods[0].condition" in response.text


def test_another_teams_patient_answers_404_like_a_missing_one(
    client: TestClient, tokens: Tokens, apcm_id: str
) -> None:
    other = _put(client, tokens, "/patients/pat-north-2/qmb-periods", [], **SOUTH)
    missing = _put(client, tokens, "/patients/nobody/qmb-periods", [], **SOUTH)
    enrollment = client.get(
        f"/enrollments/{apcm_id}/condition-periods", headers=tokens.headers(**SOUTH)
    )

    assert (other.status_code, missing.status_code, enrollment.status_code) == (404, 404, 404)


def test_billing_credentials_may_not_change_the_tier_facts(
    client: TestClient, tokens: Tokens
) -> None:
    response = _put(client, tokens, "/patients/pat-north-2/qmb-periods", [], **billing())

    assert response.status_code == 403
