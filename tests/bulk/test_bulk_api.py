"""``GET /exports/{type}``: our records as NDJSON for admin and billing credentials only."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from bulk_support import Sessions, seed_caseload
from fastapi.testclient import TestClient

from fhirbridge.api import create_app
from fhirbridge.api.auth import Role, issue_api_key
from fhirbridge.caseload import Caseload
from fhirbridge.config import Settings
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import Store, unit_of_work


@pytest.fixture
def api(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    sessions = new_database()
    seed_caseload(sessions, demo_caseload, mappings)
    keys = {}
    with unit_of_work(sessions) as session:
        for role in (Role.BILLING, Role.CARE_MANAGER):
            keys[role] = issue_api_key(
                store=Store(session), key_id=f"k-{role.value}", role=role, team="north"
            )
    settings = Settings(database_url=sessions.kw["bind"].url.render_as_string())
    with TestClient(create_app(settings)) as client:
        yield client, keys


def test_billing_gets_one_resource_per_line_of_the_type_asked_for(
    api: tuple[TestClient, dict[Role, str]], demo_caseload: Caseload
) -> None:
    client, keys = api

    response = client.get("/exports/Goal", headers={"X-API-Key": keys[Role.BILLING]})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    goals = [json.loads(line) for line in response.text.splitlines()]
    assert {g["resourceType"] for g in goals} == {"Goal"}
    assert len(goals) == len(demo_caseload.goals)


def test_a_care_manager_may_not_export(api: tuple[TestClient, dict[Role, str]]) -> None:
    client, keys = api

    response = client.get("/exports/Goal", headers={"X-API-Key": keys[Role.CARE_MANAGER]})

    assert response.status_code == 403


def test_a_type_we_do_not_export_is_rejected(api: tuple[TestClient, dict[Role, str]]) -> None:
    client, keys = api

    response = client.get("/exports/Patient", headers={"X-API-Key": keys[Role.BILLING]})

    assert response.status_code == 422
