"""SMART Backend Services against a real sekmet that requires it.

Token refresh is driven by a fake clock rather than by sleeping through a short lifetime: the
server's token lives 60 s of real time, the client is told that 46 s have passed, and the test
checks that a new token was fetched with no 401 in between (so it was refreshed *before* expiry,
not recovered after it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fhir_doubles import FakeClock, RecordingTransport, write_ec_key, write_rsa_key

from fhirbridge.fhir import (
    FhirClient,
    SigningKey,
    SmartBackendAuth,
    TokenEndpointError,
    Unauthorized,
)
from fhirbridge.localserver import LocalFhirServer

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

CLIENT_IDS = {
    "rsa": "fhirbridge-test",
    "ec": "fhirbridge-test-ec",
    "unregistered": "fhirbridge-test",
}
TOKEN_LIFETIME = 60
TASK = {"resourceType": "Task", "status": "requested", "intent": "order"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SigningKey]:
    folder = tmp_path_factory.mktemp("smart-keys")
    return {
        "rsa": SigningKey.from_pem(write_rsa_key(folder / "rsa.pem")),
        "ec": SigningKey.from_pem(write_ec_key(folder / "ec.pem")),
        "unregistered": SigningKey.from_pem(write_rsa_key(folder / "other.pem")),
    }


@pytest.fixture(scope="module")
def smart_server(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SigningKey]
) -> Iterator[LocalFhirServer]:
    server = LocalFhirServer(
        workdir=tmp_path_factory.mktemp("sekmet-smart"),
        server_auth={
            "types": ["smart"],
            # One key per client: sekmet answers 500 when a client's JWKS mixes RSA and EC
            # keys and the assertion is signed with the kind it tries second.
            "smart_clients": [
                {
                    "client_id": CLIENT_IDS[name],
                    "jwks": {"keys": [keys[name].public_jwk()]},
                    "scopes": "system/*.*",
                }
                for name in ("rsa", "ec")
            ],
            "token_lifetime": TOKEN_LIFETIME,
        },
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


def smart_auth(
    server: LocalFhirServer,
    keys: dict[str, SigningKey],
    name: str,
    clock: FakeClock | None = None,
) -> SmartBackendAuth:
    return SmartBackendAuth(
        base_url=server.base_url,
        client_id=CLIENT_IDS[name],
        key=keys[name],
        scope="system/*.cruds",
        clock=clock or FakeClock(),
    )


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fhir(
    smart_server: LocalFhirServer,
    keys: dict[str, SigningKey],
    clock: FakeClock,
    transport: RecordingTransport,
) -> AsyncIterator[FhirClient]:
    auth = smart_auth(smart_server, keys, "rsa", clock)
    async with FhirClient(smart_server.base_url, auth=auth, transport=transport) as client:
        yield client


@pytest.mark.parametrize("key_name", ["rsa", "ec"])
async def test_authenticated_create_and_read_work(
    smart_server: LocalFhirServer, keys: dict[str, SigningKey], key_name: str
) -> None:
    auth = smart_auth(smart_server, keys, key_name)

    async with FhirClient(smart_server.base_url, auth=auth) as fhir:
        created = await fhir.create(TASK)
        assert created.id is not None
        read = await fhir.read("Task", created.id)

    assert read.resource is not None
    assert read.resource["status"] == "requested"


async def test_without_credentials_the_server_answers_unauthorized(
    smart_server: LocalFhirServer,
) -> None:
    async with FhirClient(smart_server.base_url) as fhir:
        with pytest.raises(Unauthorized):
            await fhir.search_bundle("Task")


async def test_one_token_serves_many_requests(
    fhir: FhirClient, transport: RecordingTransport
) -> None:
    for _ in range(3):
        await fhir.search_bundle("Task", {"_count": 1})

    assert transport.count("/auth/token") == 1


async def test_token_is_refreshed_before_it_expires(
    fhir: FhirClient, transport: RecordingTransport, clock: FakeClock
) -> None:
    await fhir.search_bundle("Task", {"_count": 1})
    clock.advance(TOKEN_LIFETIME * 0.75 - 1)
    await fhir.search_bundle("Task", {"_count": 1})
    tokens_before_refresh_point = transport.count("/auth/token")
    clock.advance(2)
    await fhir.search_bundle("Task", {"_count": 1})

    assert tokens_before_refresh_point == 1
    assert transport.count("/auth/token") == 2
    assert [status for _, status in transport.exchanges if status == 401] == []


async def test_a_key_the_server_does_not_know_fails_naming_the_token_endpoint(
    smart_server: LocalFhirServer, keys: dict[str, SigningKey]
) -> None:
    auth = smart_auth(smart_server, keys, "unregistered")

    async with FhirClient(smart_server.base_url, auth=auth) as fhir:
        with pytest.raises(TokenEndpointError) as raised:
            await fhir.search_bundle("Task")

    error = raised.value
    token_url = smart_server.base_url.removesuffix("/fhir") + "/auth/token"
    assert error.error == "invalid_client"
    assert error.request.url == token_url
    assert token_url in str(error)
    assert "verification failed" in str(error.error_description)


def test_public_jwk_carries_kid_and_alg(keys: dict[str, SigningKey]) -> None:
    assert keys["ec"].public_jwk()["alg"] == "ES384"
    assert keys["rsa"].public_jwk()["kid"] == keys["rsa"].kid
    assert "d" not in keys["rsa"].public_jwk()


def test_key_files_are_used_as_given(tmp_path: Path) -> None:
    key = SigningKey.from_pem(write_rsa_key(tmp_path / "k.pem"), kid="chosen")

    assert key.kid == "chosen"
