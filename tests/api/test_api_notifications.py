"""The notification webhook: only the FHIR server holding the shared secret gets in, and only
well-formed subscription notifications get past the door."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fhirbridge.api import create_app
from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.fhir import FhirClient, TransportError
from tests.api.support import AUDIENCE, ISSUER, FakeClock, Tokens, care_manager

NOTIFICATIONS = PROJECT_ROOT / "fixtures" / "sync" / "notifications"
SECRET = "hook-secret-for-tests-only"
HEADER = "X-Fhirbridge-Notification-Secret"
FHIR_JSON = "application/fhir+json"


def notification(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((NOTIFICATIONS / name).read_text())
    return loaded


def post(
    client: TestClient,
    body: object,
    *,
    headers: dict[str, str] | None = None,
    content_type: str = FHIR_JSON,
) -> httpx.Response:
    sent = {HEADER: SECRET} if headers is None else headers
    response: httpx.Response = client.post(
        "/fhir/notifications",
        content=json.dumps(body).encode(),
        headers={"Content-Type": content_type, **sent},
    )
    return response


@pytest.fixture
def settings(database_url: str, jwks_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_jwks_path=jwks_path,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
        notification_secret=SecretStr(SECRET),
    )


def test_a_handshake_is_acknowledged_without_a_bearer_token(client: TestClient) -> None:
    response = post(client, notification("handshake.json"))

    assert response.status_code == 200
    assert response.json()["type"] == "handshake"
    assert response.json()["outcomes"] == {}


def test_a_heartbeat_applies_nothing(client: TestClient) -> None:
    response = post(client, notification("heartbeat.json"))

    assert response.status_code == 200
    assert response.json() == {
        "type": "heartbeat",
        "subscription": "http://127.0.0.1/fhir/Subscription/sub-7",
        "events": 0,
        "outcomes": {},
        "not_followed": [],
    }


def test_a_notification_without_the_secret_is_refused(client: TestClient) -> None:
    response = post(client, notification("handshake.json"), headers={})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == f"no {HEADER} header"


def test_a_notification_with_a_wrong_secret_is_refused(client: TestClient) -> None:
    response = post(client, notification("handshake.json"), headers={HEADER: SECRET + "x"})

    assert response.status_code == 401
    assert response.json()["detail"] == "wrong notification secret"


def test_an_api_bearer_token_does_not_replace_the_secret(
    client: TestClient, tokens: Tokens
) -> None:
    response = post(
        client, notification("handshake.json"), headers=tokens.headers(**care_manager())
    )

    assert response.status_code == 401


def test_without_a_configured_secret_every_notification_is_refused(
    database_url: str, jwks_path: Path
) -> None:
    app = create_app(Settings(database_url=database_url, jwt_jwks_path=jwks_path))
    with TestClient(app) as unconfigured:
        response = post(unconfigured, notification("handshake.json"))

    assert response.status_code == 401


def test_the_secret_header_name_is_a_setting(database_url: str, jwks_path: Path) -> None:
    settings = Settings(
        database_url=database_url,
        jwt_jwks_path=jwks_path,
        notification_secret=SecretStr(SECRET),
        notification_secret_header="X-Hook-Token",
    )
    with TestClient(create_app(settings)) as renamed:
        old_name = post(renamed, notification("handshake.json"))
        new_name = post(renamed, notification("handshake.json"), headers={"X-Hook-Token": SECRET})

    assert (old_name.status_code, new_name.status_code) == (401, 200)


@pytest.mark.parametrize(
    "path", sorted((NOTIFICATIONS / "malformed").glob("*.json")), ids=lambda p: p.stem
)
def test_a_malformed_notification_is_a_400_naming_the_part(client: TestClient, path: Path) -> None:
    response = post(client, json.loads(path.read_text()))

    assert response.status_code == 400
    problem = response.json()
    assert problem["type"].endswith("/malformed-notification")
    assert problem["errors"][0]["field"]
    assert problem["errors"][0]["field"] in problem["detail"]


def test_a_body_that_is_not_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/fhir/notifications",
        content=b"<Bundle/>",
        headers={"Content-Type": FHIR_JSON, HEADER: SECRET},
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "body", "reason": "not JSON"}]


def test_xml_is_refused_as_an_unsupported_media_type(client: TestClient) -> None:
    response = post(client, notification("handshake.json"), content_type="application/fhir+xml")

    assert response.status_code == 415


def test_the_secret_is_checked_before_the_body(client: TestClient) -> None:
    response = client.post(
        "/fhir/notifications", content=b"not json", headers={"Content-Type": FHIR_JSON}
    )

    assert response.status_code == 401


# -- the FHIR server behind the notification ------------------------------------------------


@pytest.fixture
def unreachable_fhir() -> Iterator[FhirClient]:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = FhirClient(
        "http://127.0.0.1:9/fhir", transport=httpx.MockTransport(refuse), max_retries=0
    )
    yield client
    anyio.run(client.aclose)


def test_an_event_whose_resource_cannot_be_read_is_a_502_so_the_sender_retries(
    settings: Settings, clock: FakeClock, unreachable_fhir: FhirClient
) -> None:
    app = create_app(settings, clock=clock, fhir_client=unreachable_fhir)
    with TestClient(app) as client:
        response = post(client, notification("event-id-only.json"))

    assert response.status_code == 502
    assert response.json()["type"].endswith("/fhir-server-unavailable")


def test_an_injected_fhir_client_is_left_open_for_its_owner(
    settings: Settings, unreachable_fhir: FhirClient
) -> None:
    with TestClient(create_app(settings, fhir_client=unreachable_fhir)):
        pass

    # A closed client would refuse to send at all; this one still reaches its transport.
    with pytest.raises(TransportError):
        anyio.run(unreachable_fhir.read, "Task", "1")
