"""The web app under test: the API's app (fixtures/api/caseload.yaml, a fake clock standing at
2026-10-15T15:00Z), and a browser-less sign-in: a session cookie made by
``fhirbridge.web.session.issue_session_cookie`` for a principal, with its CSRF token. Data a test
needs beyond the caseload is arranged through the REST API with bearer tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fhirbridge.api import create_app
from fhirbridge.api.auth import Principal, Role
from fhirbridge.config import Settings
from fhirbridge.persistence.scratch import Backend, DatabaseUnavailable, scratch_database
from fhirbridge.web.session import decode_session, issue_session_cookie
from tests.api.support import (
    AUDIENCE,
    ISSUER,
    FakeClock,
    SigningKey,
    Tokens,
    load_caseload,
    rsa_key,
    write_jwks,
)
from tests.conftest import POSTGRES_URL

NORA = Principal("user:nora", frozenset({Role.CARE_MANAGER}), team="north", staff_id="cm-north")
SUE = Principal("user:sue", frozenset({Role.CARE_MANAGER}), team="south", staff_id="cm-south")
SAM = Principal("user:sam", frozenset({Role.SUPERVISOR}), team="north", staff_id="sup-north")
BILL = Principal("user:bill", frozenset({Role.BILLING}), team="north")
ADA = Principal("user:ada", frozenset({Role.ADMIN}))


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return rsa_key("web-test-rsa")


@pytest.fixture(scope="session")
def jwks_path(tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey) -> Path:
    return write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json", [signing_key])


@pytest.fixture(scope="session")
def tokens(signing_key: SigningKey) -> Tokens:
    return Tokens(signing_key)


@pytest.fixture
def backend() -> Backend:
    """SQLite by default; a module where data matters overrides it to run on PostgreSQL too."""
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
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@dataclass(frozen=True)
class Browser:
    """A signed-in user: the client carries the session cookie; ``csrf`` goes in every form."""

    client: TestClient
    csrf: str

    def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        response: httpx.Response = self.client.post(
            path, data={"csrf_token": self.csrf, **(data or {})}
        )
        return response


def sign_in(client: TestClient, settings: Settings, principal: Principal) -> Browser:
    name, value = issue_session_cookie(settings, principal)
    session = decode_session(settings, value)
    assert session is not None
    client.cookies.set(name, value)
    return Browser(client, session.csrf_token)


def field_error(html: str, field: str) -> list[str]:
    """The reasons shown next to the form field ``field``."""
    return re.findall(
        rf'<p class="field-error" id="{re.escape(field)}-error"[^>]*>([^<]*)</p>', html
    )
