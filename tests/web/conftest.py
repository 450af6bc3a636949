"""The web app under test: the API's app (fixtures/api/caseload.yaml, a fake clock standing at
2026-10-15T15:00Z), and a browser-less sign-in: a session cookie made by
``fhirbridge.web.session.issue_session_cookie`` for a principal, with its CSRF token. Data a test
needs beyond the caseload is arranged through the REST API with bearer tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fhirbridge.api.auth import Principal, Role
from fhirbridge.config import Settings
from fhirbridge.web.session import decode_session, issue_session_cookie

# The API's app, database, clock and tokens, as the API tests have them; only the client differs.
from tests.api.conftest import (  # noqa: F401
    app,
    backend,
    clock,
    database_url,
    ec_signing_key,
    jwks_path,
    settings,
    signing_key,
    tokens,
)

NORA = Principal("user:nora", frozenset({Role.CARE_MANAGER}), team="north", staff_id="cm-north")
SUE = Principal("user:sue", frozenset({Role.CARE_MANAGER}), team="south", staff_id="cm-south")
SAM = Principal("user:sam", frozenset({Role.SUPERVISOR}), team="north", staff_id="sup-north")
BILL = Principal("user:bill", frozenset({Role.BILLING}), team="north")
ADA = Principal("user:ada", frozenset({Role.ADMIN}))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:  # noqa: F811 (the fixture imported above)
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


def sign_in(client: TestClient, settings: Settings, principal: Principal) -> Browser:  # noqa: F811
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
