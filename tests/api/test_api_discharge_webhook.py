"""A discharge announced by the FHIR server's subscription reaches the TCM workflow through the
webhook itself (not only through the pull): a full-resource notification of the discharge
Encounter opens one period, however often it is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fhirbridge.config import PROJECT_ROOT, Settings
from tests.api.support import AUDIENCE, ISSUER, Tokens, care_manager
from tests.api.test_api_notifications import SECRET, notification, post

DISCHARGE = PROJECT_ROOT / "fixtures/transitional_care/discharge-home.json"
SERVER = "http://127.0.0.1:8090/fhir"  # the settings' FHIR server: its resources are ours


@pytest.fixture
def settings(database_url: str, jwks_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_jwks_path=jwks_path,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
        fhir_base_url=SERVER,
        practice_timezone="UTC",
        notification_secret=SecretStr(SECRET),
    )


def _discharge_notification() -> dict[str, Any]:
    """The fixture's Task event with the discharge Encounter (of pat-north-1) as its focus."""
    bundle = notification("event-full-resource.json")
    encounter = json.loads(DISCHARGE.read_text())
    url = f"{SERVER}/Encounter/{encounter['id']}"
    status, event = bundle["entry"]
    for part in status["resource"]["parameter"]:
        for inner in part.get("part", []):
            if inner["name"] == "focus":
                inner["valueReference"] = {"reference": url}
    event.update(
        fullUrl=url,
        resource={**encounter, "meta": {"versionId": "1"}},
        request={"method": "PUT", "url": f"Encounter/{encounter['id']}"},
    )
    return bundle


def _periods(client: TestClient, tokens: Tokens) -> list[dict[str, Any]]:
    headers = tokens.headers(**care_manager())
    response = client.get("/patients/pat-north-1/tcm-periods", headers=headers)
    assert response.status_code == 200, response.text
    periods: list[dict[str, Any]] = response.json()
    return periods


def test_a_notified_discharge_opens_a_tcm_period(client: TestClient, tokens: Tokens) -> None:
    answer = post(client, _discharge_notification())

    assert answer.status_code == 200, answer.text
    [period] = _periods(client, tokens)
    assert period["discharged_on"] == "2026-03-06"


def test_a_discharge_notified_twice_opens_one_period(client: TestClient, tokens: Tokens) -> None:
    post(client, _discharge_notification())
    answer = post(client, _discharge_notification())

    assert answer.status_code == 200, answer.text
    assert len(_periods(client, tokens)) == 1
