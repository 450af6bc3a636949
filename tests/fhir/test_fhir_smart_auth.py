"""SMART Backend Services: the client assertion, token caching and refresh, re-auth on 401."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fhir_doubles import BASE, FakeClock, RecordingSleep, write_ec_key, write_rsa_key
from jwt.algorithms import RSAAlgorithm

from fhirbridge.fhir import (
    FhirClient,
    SigningKey,
    SmartBackendAuth,
    TokenEndpointError,
    Unauthorized,
)
from fhirbridge.fhir.auth import ASSERTION_TYPE

TOKEN_URL = "http://fhir.test/auth/token"
CLIENT_ID = "fhirbridge-test"
TASK = {"resourceType": "Task", "id": "t1", "status": "requested", "intent": "order"}


@pytest.fixture
def rsa_key(tmp_path: Path) -> SigningKey:
    return SigningKey.from_pem(write_rsa_key(tmp_path / "rsa.pem"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(rsa_key: SigningKey, clock: FakeClock) -> SmartBackendAuth:
    return SmartBackendAuth(
        base_url=BASE, client_id=CLIENT_ID, key=rsa_key, scope="system/*.rs", clock=clock
    )


def token_response(token: str, expires_in: int = 300) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": token, "token_type": "bearer", "expires_in": expires_in}
    )


def claims_of(assertion: str, key: SigningKey) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(
        assertion,
        key.private_key.public_key(),
        algorithms=[key.alg],
        audience=TOKEN_URL,
    )
    return decoded


# ---------------------------------------------------------------- the assertion


def test_assertion_names_the_client_as_issuer_and_subject_and_the_token_url_as_audience(
    auth: SmartBackendAuth, rsa_key: SigningKey
) -> None:
    claims = claims_of(auth.client_assertion(TOKEN_URL), rsa_key)

    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == TOKEN_URL


def test_assertion_expires_within_five_minutes(auth: SmartBackendAuth, rsa_key: SigningKey) -> None:
    claims = claims_of(auth.client_assertion(TOKEN_URL), rsa_key)

    assert isinstance(claims["exp"], int)
    assert isinstance(claims["iat"], int)
    assert 0 < claims["exp"] - claims["iat"] <= 300


def test_each_assertion_has_a_new_jti(auth: SmartBackendAuth, rsa_key: SigningKey) -> None:
    first = claims_of(auth.client_assertion(TOKEN_URL), rsa_key)
    second = claims_of(auth.client_assertion(TOKEN_URL), rsa_key)

    assert first["jti"] != second["jti"]


def test_rsa_assertion_is_rs384_with_the_key_id_in_the_header(
    auth: SmartBackendAuth, rsa_key: SigningKey
) -> None:
    header = jwt.get_unverified_header(auth.client_assertion(TOKEN_URL))

    assert header["alg"] == "RS384"
    assert header["kid"] == rsa_key.kid


def test_ec_p384_key_signs_es384(tmp_path: Path) -> None:
    key = SigningKey.from_pem(write_ec_key(tmp_path / "ec.pem"))
    auth = SmartBackendAuth(base_url=BASE, client_id=CLIENT_ID, key=key, scope="system/*.rs")

    assertion = auth.client_assertion(TOKEN_URL)

    assert jwt.get_unverified_header(assertion)["alg"] == "ES384"
    assert claims_of(assertion, key)["iss"] == CLIENT_ID


def test_ec_key_on_another_curve_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="P-384"):
        SigningKey.from_pem(write_ec_key(tmp_path / "p256.pem", ec.SECP256R1()))


def test_assertion_lifetime_over_five_minutes_is_refused(rsa_key: SigningKey) -> None:
    with pytest.raises(ValueError, match="5 minutes"):
        SmartBackendAuth(
            base_url=BASE, client_id=CLIENT_ID, key=rsa_key, scope="x", assertion_lifetime=301
        )


def test_key_loads_from_a_jwks_file_by_kid(tmp_path: Path, rsa_key: SigningKey) -> None:
    assert isinstance(rsa_key.private_key, rsa.RSAPrivateKey)
    private_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.private_key))
    jwks = tmp_path / "keys.jwks"
    jwks.write_text(json.dumps({"keys": [{**private_jwk, "kid": "key-2025"}]}))

    loaded = SigningKey.from_jwks(jwks, kid="key-2025")

    assert (loaded.kid, loaded.alg) == ("key-2025", "RS384")
    assert loaded.public_jwk()["n"] == rsa_key.public_jwk()["n"]


def test_repr_shows_no_key_material_or_token(auth: SmartBackendAuth) -> None:
    shown = repr(auth) + repr(auth.key)

    assert "PRIVATE" not in shown
    assert "RSAPrivateKey" not in shown
    assert CLIENT_ID in shown


# ---------------------------------------------------------------- the flow


@pytest.fixture
def smart_router(router: respx.MockRouter) -> respx.MockRouter:
    router.get("/.well-known/smart-configuration").mock(
        return_value=httpx.Response(200, json={"token_endpoint": TOKEN_URL})
    )
    return router


@pytest.fixture
async def smart_client(
    transport: httpx.MockTransport, auth: SmartBackendAuth, sleep: RecordingSleep
) -> AsyncIterator[FhirClient]:
    async with FhirClient(BASE, auth=auth, transport=transport, sleep=sleep) as fhir:
        yield fhir


@pytest.mark.anyio
async def test_token_request_is_client_credentials_with_a_jwt_assertion(
    smart_router: respx.MockRouter, smart_client: FhirClient, rsa_key: SigningKey
) -> None:
    token = smart_router.post(TOKEN_URL).mock(return_value=token_response("t1"))
    smart_router.get("/Task/t1").mock(return_value=httpx.Response(200, json=TASK))

    await smart_client.read("Task", "t1")

    form = parse_qs(token.calls.last.request.content.decode())
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_assertion_type"] == [ASSERTION_TYPE]
    assert form["scope"] == ["system/*.rs"]
    assert claims_of(form["client_assertion"][0], rsa_key)["aud"] == TOKEN_URL


@pytest.mark.anyio
async def test_requests_carry_the_access_token_and_reuse_it(
    smart_router: respx.MockRouter, smart_client: FhirClient
) -> None:
    token = smart_router.post(TOKEN_URL).mock(return_value=token_response("t1"))
    reads = smart_router.get("/Task/t1").mock(return_value=httpx.Response(200, json=TASK))

    await smart_client.read("Task", "t1")
    await smart_client.read("Task", "t1")

    assert token.call_count == 1
    assert [c.request.headers["Authorization"] for c in reads.calls] == ["Bearer t1"] * 2


@pytest.mark.anyio
async def test_token_is_refreshed_shortly_before_it_expires(
    smart_router: respx.MockRouter, smart_client: FhirClient, clock: FakeClock
) -> None:
    token = smart_router.post(TOKEN_URL).mock(
        side_effect=[token_response("t1", 300), token_response("t2", 300)]
    )
    reads = smart_router.get("/Task/t1").mock(return_value=httpx.Response(200, json=TASK))

    await smart_client.read("Task", "t1")
    clock.advance(269)  # still outside the 30 s refresh margin
    await smart_client.read("Task", "t1")
    clock.advance(2)  # inside it, but before expiry
    await smart_client.read("Task", "t1")

    assert token.call_count == 2
    headers = [c.request.headers["Authorization"] for c in reads.calls]
    assert headers == ["Bearer t1", "Bearer t1", "Bearer t2"]


@pytest.mark.anyio
async def test_a_401_fetches_a_new_token_and_resends_once(
    smart_router: respx.MockRouter, smart_client: FhirClient
) -> None:
    token = smart_router.post(TOKEN_URL).mock(
        side_effect=[token_response("revoked"), token_response("t2")]
    )
    reads = smart_router.get("/Task/t1").mock(
        side_effect=[httpx.Response(401), httpx.Response(200, json=TASK)]
    )

    result = await smart_client.read("Task", "t1")

    assert result.resource == TASK
    assert token.call_count == 2
    assert reads.calls.last.request.headers["Authorization"] == "Bearer t2"


@pytest.mark.anyio
async def test_a_second_401_is_raised_as_unauthorized_without_further_attempts(
    smart_router: respx.MockRouter, smart_client: FhirClient
) -> None:
    token = smart_router.post(TOKEN_URL).mock(
        side_effect=[token_response("a"), token_response("b")]
    )
    reads = smart_router.get("/Task/t1").mock(return_value=httpx.Response(401))

    with pytest.raises(Unauthorized) as raised:
        await smart_client.read("Task", "t1")

    assert raised.value.request.url == f"{BASE}/Task/t1"
    assert (token.call_count, reads.call_count) == (2, 2)


@pytest.mark.anyio
async def test_a_refused_assertion_is_a_token_endpoint_error_with_the_oauth_error(
    smart_router: respx.MockRouter, smart_client: FhirClient
) -> None:
    smart_router.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            401, json={"error": "invalid_client", "error_description": "bad signature"}
        )
    )

    with pytest.raises(TokenEndpointError) as raised:
        await smart_client.read("Task", "t1")

    error = raised.value
    assert (error.error, error.error_description) == ("invalid_client", "bad signature")
    assert error.request.url == TOKEN_URL
    assert TOKEN_URL in str(error)


@pytest.mark.anyio
async def test_a_token_endpoint_outage_is_retried_like_any_transient_failure(
    smart_router: respx.MockRouter, smart_client: FhirClient
) -> None:
    token = smart_router.post(TOKEN_URL).mock(
        side_effect=[httpx.Response(503), token_response("t1")]
    )
    smart_router.get("/Task/t1").mock(return_value=httpx.Response(200, json=TASK))

    await smart_client.read("Task", "t1")

    assert token.call_count == 2


@pytest.mark.anyio
async def test_an_explicit_token_url_skips_discovery(
    router: respx.MockRouter, transport: httpx.MockTransport, rsa_key: SigningKey
) -> None:
    discovery = router.get("/.well-known/smart-configuration")
    router.post(TOKEN_URL).mock(return_value=token_response("t1"))
    router.get("/Task/t1").mock(return_value=httpx.Response(200, json=TASK))
    auth = SmartBackendAuth(
        base_url=BASE, client_id=CLIENT_ID, key=rsa_key, scope="s", token_url=TOKEN_URL
    )

    async with FhirClient(BASE, auth=auth, transport=transport) as fhir:
        await fhir.read("Task", "t1")

    assert discovery.call_count == 0
