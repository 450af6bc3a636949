"""The API under test: a migrated database holding fixtures/api/caseload.yaml, an app bound to
it with a fake clock, and tokens signed by key pairs made for this test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fhirbridge.api import create_app
from fhirbridge.config import Settings
from fhirbridge.persistence.scratch import Backend, DatabaseUnavailable, scratch_database
from tests.api.support import (
    AUDIENCE,
    ISSUER,
    FakeClock,
    SigningKey,
    Tokens,
    ec_key,
    load_caseload,
    rsa_key,
    write_jwks,
)
from tests.conftest import POSTGRES_URL


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return rsa_key("test-rsa")


@pytest.fixture(scope="session")
def ec_signing_key() -> SigningKey:
    return ec_key("test-ec")


@pytest.fixture(scope="session")
def jwks_path(
    tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey, ec_signing_key: SigningKey
) -> Path:
    return write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json", [signing_key, ec_signing_key])


@pytest.fixture(scope="session")
def tokens(signing_key: SigningKey) -> Tokens:
    return Tokens(signing_key)


@pytest.fixture
def backend() -> Backend:
    """SQLite by default; a module can override this fixture to run on PostgreSQL as well."""
    return "sqlite"


@pytest.fixture
def database_url(backend: Backend, tmp_path: Path) -> Iterator[str]:
    try:
        with scratch_database(backend, workdir=tmp_path, postgres_url=POSTGRES_URL) as url:
            load_caseload(url)
            yield url
    except DatabaseUnavailable as error:
        pytest.skip(f"PostgreSQL not reachable at {error.url} ({error.reason})")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str, jwks_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_jwks_path=jwks_path,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
        practice_timezone="UTC",
    )


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> FastAPI:
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
