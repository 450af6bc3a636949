"""Whatever arrives at the notification webhook with the right secret, the answer is a 4xx problem,
never a 500: counts that only look like numbers, JSON nested to exhaust a parser, JSON that is
no object, bodies too large, and strings FHIR and our database cannot hold."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.persistence.scratch import Backend
from tests.api.support import AUDIENCE, ISSUER, count_rows

NOTIFICATIONS = PROJECT_ROOT / "fixtures" / "sync" / "notifications"
SECRET = "hook-secret-for-tests-only"
HEADER = "X-Fhirbridge-Notification-Secret"
FHIR_JSON = {"Content-Type": "application/fhir+json", HEADER: SECRET}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    return backend


@pytest.fixture
def settings(database_url: str, jwks_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_jwks_path=jwks_path,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
        notification_secret=SecretStr(SECRET),
    )


def _notification(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((NOTIFICATIONS / name).read_text())
    return loaded


def _heartbeat_counting(count: object) -> dict[str, Any]:
    bundle = _notification("heartbeat.json")
    parameters = bundle["entry"][0]["resource"]["parameter"]
    parameters[-1] = {"name": "events-since-subscription-start", "valueString": count}
    return bundle


def _post(client: TestClient, content: bytes) -> Any:
    return client.post("/fhir/notifications", content=content, headers=FHIR_JSON)


def _malformed(response: Any) -> list[str]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize("count", ["²", "١٢", "-1", "1e3", "12 ", "9" * 5000, -1, 2**64, 1.5])
def test_an_event_count_that_is_not_a_plain_count_is_a_400_naming_it(
    client: TestClient, count: object
) -> None:
    response = _post(client, json.dumps(_heartbeat_counting(count)).encode())

    assert _malformed(response) == ["Parameters.parameter:events-since-subscription-start"]


def test_an_event_count_of_ascii_digits_is_read(client: TestClient) -> None:
    response = _post(client, json.dumps(_heartbeat_counting("120")).encode())

    assert response.status_code == 200, response.text


def test_json_nested_a_hundred_thousand_deep_is_a_400(client: TestClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000

    response = _post(client, deep)

    assert _malformed(response) == ["body"]


def test_a_bundle_nesting_deeper_than_any_resource_is_a_400(client: TestClient) -> None:
    bundle = _notification("heartbeat.json")
    nested: Any = "bottom"
    for _ in range(200):
        nested = {"extension": [nested]}
    bundle["entry"][0]["resource"]["meta"] = nested

    response = _post(client, json.dumps(bundle).encode())

    assert _malformed(response)[0].startswith("Bundle.entry[0].resource.meta")


@pytest.mark.parametrize("body", [b"[]", b"1", b'"Bundle"', b"null", b"true", b"{}"])
def test_json_that_is_not_a_bundle_object_is_a_400(client: TestClient, body: bytes) -> None:
    response = _post(client, body)

    assert _malformed(response) == ["Bundle"]


def test_a_body_over_the_limit_is_a_413_problem(client: TestClient) -> None:
    bundle = _notification("heartbeat.json")
    bundle["padding"] = "x" * (5 * 1024 * 1024)

    response = _post(client, json.dumps(bundle).encode())

    assert response.status_code == 413
    assert response.json()["type"] == "https://fhirbridge.dev/problems/content-too-large"


def test_invalid_utf8_is_a_400(client: TestClient) -> None:
    response = _post(client, b'{"resourceType": "Bundle\xff"}')

    assert _malformed(response) == ["body"]


@pytest.mark.parametrize("character", ["\x00", "\x1b", "\x7f", "\ud800"])
def test_a_control_character_in_a_focus_resource_is_a_400_and_nothing_is_applied(
    client: TestClient, database_url: str, character: str
) -> None:
    bundle = _notification("event-full-resource.json")
    focus = next(e["resource"] for e in bundle["entry"][1:] if "resource" in e)
    focus["note"] = [{"text": f"left a message{character}"}]
    before = count_rows(database_url, "care_tasks")

    response = _post(client, json.dumps(bundle).encode())

    assert _malformed(response)[0].startswith("Bundle.entry[")
    assert character not in response.text
    assert count_rows(database_url, "care_tasks") == before


def test_a_control_character_in_an_element_name_is_a_400(client: TestClient) -> None:
    bundle = copy.deepcopy(_notification("heartbeat.json"))
    bundle["entry"][0]["resource"]["bad\x00name"] = 1

    response = _post(client, json.dumps(bundle).encode())

    assert _malformed(response) == ["Bundle.entry[0].resource"]


def test_a_secret_header_that_is_not_ascii_is_a_401(client: TestClient) -> None:
    response = client.post(
        "/fhir/notifications",
        content=json.dumps(_notification("heartbeat.json")).encode(),
        headers={"Content-Type": "application/fhir+json", HEADER: "s\xe9cret".encode("latin-1")},
    )

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
