"""Month end for billing users: the team's report with an explanation per patient and the
entries set aside, and the CSV that ``GET /reports/billing?format=csv`` answers, to download.
On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fhirbridge.api.auth import Principal, Role
from fhirbridge.config import Settings
from fhirbridge.persistence.scratch import Backend
from tests.api.support import Tokens, billing
from tests.web.conftest import BILL, NORA, field_error, sign_in
from tests.worklist_caseload import load_worklist


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def worklist_caseload(database_url: str) -> None:
    load_worklist(database_url)


def test_a_billing_user_sees_the_month_per_patient_with_the_reasons(
    client: TestClient, settings: Settings
) -> None:
    bill = sign_in(client, settings, BILL)

    page = bill.client.get("/app/month-end", params={"month": "2026-10"})

    assert page.status_code == 200
    assert "Team north" in page.text
    patient = page.text.split("<h3>pat-wl-mod</h3>")[1].split("</table>")[0]
    assert "<td>99490</td><td>not-earned</td>" in patient
    assert 'id="csv-download"' in page.text


def test_the_csv_download_is_the_reports_csv_as_an_attachment(
    client: TestClient, settings: Settings, tokens: Tokens
) -> None:
    expected = client.get(
        "/reports/billing",
        params={"month": "2026-10", "team": "north", "format": "csv"},
        headers=tokens.headers(**billing()),
    )
    assert expected.status_code == 200, expected.text
    bill = sign_in(client, settings, BILL)

    download = bill.client.get("/app/month-end.csv", params={"month": "2026-10"})

    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == (
        'attachment; filename="billing-north-2026-10.csv"'
    )
    assert download.text == expected.text
    assert "pat-wl-mod" in download.text


def test_a_billing_user_without_a_team_is_asked_to_name_one(
    client: TestClient, settings: Settings
) -> None:
    teamless = sign_in(client, settings, Principal("user:b2", frozenset({Role.BILLING})))

    page = teamless.client.get("/app/month-end", params={"month": "2026-10"})

    assert page.status_code == 422
    assert field_error(page.text, "team") == ["name a team you may see"]


def test_a_month_without_billing_rules_is_refused_next_to_the_month(
    client: TestClient, settings: Settings
) -> None:
    bill = sign_in(client, settings, BILL)

    page = bill.client.get("/app/month-end", params={"month": "1999-10"})

    assert page.status_code == 422
    assert len(field_error(page.text, "month")) == 1


def test_care_managers_have_no_month_end(client: TestClient, settings: Settings) -> None:
    nora = sign_in(client, settings, NORA)

    assert nora.client.get("/app/month-end").status_code == 403
    assert nora.client.get("/app/month-end.csv").status_code == 403
