"""Every route but /health and the docs needs a valid bearer token or API key; failures are
401 problems that never echo the credential."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fhirbridge.api.auth import AuthenticationFailed, Authenticator, Role, issue_api_key
from fhirbridge.config import Settings
from fhirbridge.persistence import Store, unit_of_work
from tests.api.support import SigningKey, Tokens, care_manager, rsa_key, time_entry_body
from tests.sessions import session_factory

PUBLIC = {"/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}


def _key(
    app: FastAPI,
    role: Role,
    team: str | None = "north",
    key_id: str = "etl",
    staff_id: str | None = None,
) -> str:
    with unit_of_work(session_factory(app.state.engine)) as session:
        return issue_api_key(
            store=Store(session), key_id=key_id, role=role, team=team, staff_id=staff_id
        )


def _assert_unauthenticated(response: object, reason_part: str) -> None:
    assert getattr(response, "status_code") == 401  # noqa: B009
    body = getattr(response, "json")()  # noqa: B009
    assert getattr(response, "headers")["content-type"] == "application/problem+json"  # noqa: B009
    assert body["status"] == 401
    assert body["type"].endswith("/unauthenticated")
    assert reason_part in body["detail"]


def test_health_needs_no_credentials(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_document_needs_no_credentials(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200


def test_every_other_route_refuses_a_request_without_credentials(
    app: FastAPI, client: TestClient
) -> None:
    operations = [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        if path not in PUBLIC
        for method in item
    ]
    assert len(operations) > 10
    for method, path in operations:
        concrete = path.replace("{kind}", "time-entries").replace("{", "").replace("}", "")
        response = client.request(method, concrete, json={})
        assert response.status_code == 401, f"{method} {path}"


def test_a_missing_token_is_a_401_problem(client: TestClient) -> None:
    response = client.get("/patients/pat-north-1")
    _assert_unauthenticated(response, "no credentials")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_expired_token_is_refused(client: TestClient, tokens: Tokens) -> None:
    expired = int(time.time()) - 3600
    response = client.get(
        "/patients/pat-north-1", headers=tokens.headers(**care_manager(), exp=expired)
    )
    _assert_unauthenticated(response, "expired")


def test_a_token_for_another_audience_is_refused(client: TestClient, tokens: Tokens) -> None:
    response = client.get(
        "/patients/pat-north-1", headers=tokens.headers(**care_manager(), aud="another-api")
    )
    _assert_unauthenticated(response, "audience")


def test_a_token_from_another_issuer_is_refused(client: TestClient, tokens: Tokens) -> None:
    response = client.get(
        "/patients/pat-north-1", headers=tokens.headers(**care_manager(), iss="https://evil.test")
    )
    _assert_unauthenticated(response, "issuer")


def test_a_token_with_a_bad_signature_is_refused(
    client: TestClient, tokens: Tokens, signing_key: SigningKey
) -> None:
    # Same key id as the trusted key, signed by a different private key.
    impostor = rsa_key(signing_key.kid)
    response = client.get(
        "/patients/pat-north-1", headers=tokens.headers(key=impostor, **care_manager())
    )
    _assert_unauthenticated(response, "signature")


def test_a_token_signed_by_an_unknown_key_is_refused(client: TestClient, tokens: Tokens) -> None:
    response = client.get(
        "/patients/pat-north-1",
        headers=tokens.headers(key=rsa_key("not-in-jwks"), **care_manager()),
    )
    _assert_unauthenticated(response, "unknown key")


def test_a_token_without_exp_is_refused(client: TestClient, tokens: Tokens) -> None:
    response = client.get(
        "/patients/pat-north-1", headers=tokens.headers(**care_manager(), exp=None)
    )
    _assert_unauthenticated(response, "'exp'")


def test_an_es256_token_from_the_jwks_is_accepted(
    client: TestClient, tokens: Tokens, ec_signing_key: SigningKey
) -> None:
    response = client.get(
        "/patients/pat-north-1", headers=tokens.headers(key=ec_signing_key, **care_manager())
    )
    assert response.status_code == 200
    assert response.json()["id"] == "pat-north-1"


def test_a_refusal_never_echoes_the_token(client: TestClient, tokens: Tokens) -> None:
    token = tokens.sign(**care_manager(), aud="another-api")
    response = client.get("/patients/pat-north-1", headers={"Authorization": f"Bearer {token}"})
    assert token not in response.text


def test_a_valid_api_key_authenticates_a_machine_client(app: FastAPI, client: TestClient) -> None:
    key = _key(app, Role.BILLING)
    response = client.get(
        "/reports/minutes", params={"month": "2026-10"}, headers={"X-API-Key": key}
    )
    assert response.status_code == 200


def test_a_wrong_api_key_is_refused(app: FastAPI, client: TestClient) -> None:
    key = _key(app, Role.BILLING)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    response = client.get(
        "/reports/minutes", params={"month": "2026-10"}, headers={"X-API-Key": forged}
    )
    _assert_unauthenticated(response, "API key")


def test_an_api_key_is_stored_only_as_its_hash(app: FastAPI) -> None:
    key = _key(app, Role.ADMIN, team=None, key_id="ops")
    with unit_of_work(session_factory(app.state.engine)) as session:
        stored = Store(session).api_keys.get("ops")
    assert stored is not None
    assert key not in stored.key_hash
    assert len(stored.key_hash) == 64


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_care_manager_key_with_a_staff_id_records_time_as_that_member(
    app: FastAPI, client: TestClient
) -> None:
    key = _key(app, Role.CARE_MANAGER, team="north", staff_id="cm-north")

    response = client.post("/time-entries", json=time_entry_body(), headers={"X-API-Key": key})

    assert response.status_code == 201, response.text
    assert response.json()["staff_id"] == "cm-north"


def test_a_care_manager_key_without_a_staff_id_records_no_time(
    app: FastAPI, client: TestClient
) -> None:
    key = _key(app, Role.CARE_MANAGER, team="north")

    response = client.post("/time-entries", json=time_entry_body(), headers={"X-API-Key": key})

    assert response.status_code == 403, response.text


@pytest.mark.parametrize("scheme", ["Basic dXNlcjpwYXNz", "Bearer"])
def test_a_malformed_authorization_header_is_refused(client: TestClient, scheme: str) -> None:
    response = client.get("/patients/pat-north-1", headers={"Authorization": scheme})
    assert response.status_code == 401


@pytest.mark.parametrize("claim", ["sub", "team", "staff_id"])
def test_a_claim_holding_a_control_character_is_refused(
    client: TestClient, tokens: Tokens, claim: str
) -> None:
    claims = {**care_manager(), claim: "cm-north\x00"}
    response = client.get("/patients/pat-north-1", headers=tokens.headers(**claims))
    assert response.status_code == 401
    assert claim in response.json()["detail"]


def test_an_idempotency_key_with_spaces_is_refused_naming_it(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.post(
        "/time-entries",
        json=time_entry_body(),
        headers={**tokens.headers(**care_manager()), "Idempotency-Key": "two words"},
    )
    assert response.status_code == 422
    assert any("Idempotency-Key" in e["field"] for e in response.json()["errors"])


def test_a_token_accepted_before_is_refused_once_it_expires(
    settings: Settings, app: FastAPI, tokens: Tokens
) -> None:
    # Verified tokens are remembered; their expiry is still checked on every request.
    authenticator = Authenticator(
        settings.model_copy(update={"jwt_leeway_seconds": 0}), session_factory(app.state.engine)
    )
    token = tokens.sign(**care_manager(), exp=int(time.time()) + 2)
    first = authenticator.authenticate(bearer_token=token, api_key=None)
    assert authenticator.authenticate(bearer_token=token, api_key=None) == first
    time.sleep(3)
    with pytest.raises(AuthenticationFailed, match="expired"):
        authenticator.authenticate(bearer_token=token, api_key=None)
