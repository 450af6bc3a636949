"""The notification webhook against a real FHIR server: records pushed by the sync worker,
changed on the server by another system, come back through an id-only notification."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fhirbridge.caseload import load_caseload
from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.domain import TaskStatus
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.loader import load_mappings
from fhirbridge.persistence import (
    EntityKind,
    Store,
    SyncTarget,
    make_engine,
    unit_of_work,
)
from fhirbridge.persistence.scratch import scratch_database
from fhirbridge.sync.worker import SyncWorker
from tests.api.support import AUDIENCE, ISSUER
from tests.api.test_api_notifications import HEADER, SECRET, notification
from tests.conftest import POSTGRES_URL
from tests.sessions import session_factory

pytestmark = pytest.mark.integration
CASELOAD = PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"
REFERRAL = "r-1001-food"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database: the demo caseload is pushed into it, not the API caseload."""
    with scratch_database("sqlite", workdir=tmp_path, postgres_url=POSTGRES_URL) as url:
        yield url


@pytest.fixture
def settings(database_url: str, jwks_path: Path, fhir_server: LocalFhirServer) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_jwks_path=jwks_path,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
        fhir_base_url=fhir_server.base_url,
        # A system of its own: other tests' records on the shared server are not ours.
        identifier_system=f"urn:fhirbridge:test-notify-{uuid.uuid4().hex[:12]}",
        notification_secret=SecretStr(SECRET),
    )


@pytest.fixture
def referral_task_id(settings: Settings) -> str:
    """The demo caseload stored and pushed by the sync worker; the referral Task's server id."""
    mappings = load_mappings(settings.mappings_dir)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        caseload = load_caseload(CASELOAD)
        with unit_of_work(sessions) as session:
            store = Store(session)
            for patient in caseload.patients:
                store.save(patient)
            for member in caseload.members:
                store.save(member)
            for record in caseload.care_records():
                store.save(record)

        async def drain() -> None:
            async with FhirClient(settings.fhir_base_url, max_retries=0) as client:
                worker = SyncWorker(
                    sessions=sessions,
                    client=client,
                    mappings=mappings,
                    identifier_system=settings.identifier_system,
                    worker_id="notification-test",
                )
                await worker.drain()

        anyio.run(drain)
        with unit_of_work(sessions) as session:
            link = Store(session).fhir_links.get(SyncTarget(EntityKind.REFERRAL, REFERRAL, "Task"))
        assert link is not None, "the referral Task was not pushed"
        return link.server_id
    finally:
        engine.dispose()


def _local_task_status(settings: Settings) -> TaskStatus:
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            status: TaskStatus = Store(session).referrals.require(REFERRAL).task_status
            return status
    finally:
        engine.dispose()


def _performer_accepts(base_url: str, task_id: str) -> None:
    """The food bank accepts the referral on the server, as another system would."""
    url = f"{base_url}/Task/{task_id}"
    task = httpx.get(url, headers=FHIR_JSON).json()
    task["status"] = "accepted"
    httpx.put(url, json=task, headers=FHIR_JSON).raise_for_status()


def _about(focus: str) -> dict[str, Any]:
    """The id-only fixture with one event, about ``focus``."""
    bundle = notification("event-id-only.json")
    status = bundle["entry"][0]["resource"]
    events = [p for p in status["parameter"] if p["name"] == "notification-event"]
    status["parameter"] = [p for p in status["parameter"] if p not in events[1:]]
    events[0]["part"][2]["valueReference"]["reference"] = focus
    bundle["entry"] = bundle["entry"][:1]
    return bundle


def _post(client: TestClient, bundle: dict[str, Any]) -> httpx.Response:
    response: httpx.Response = client.post(
        "/fhir/notifications",
        content=json.dumps(bundle).encode(),
        headers={"Content-Type": "application/fhir+json", HEADER: SECRET},
    )
    return response


def test_a_change_on_the_server_reaches_the_local_record_through_the_webhook(
    referral_task_id: str, settings: Settings, client: TestClient
) -> None:
    _performer_accepts(settings.fhir_base_url, referral_task_id)

    response = _post(client, _about(f"{settings.fhir_base_url}/Task/{referral_task_id}"))

    assert response.status_code == 200
    assert response.json()["outcomes"] == {"applied": 1}
    assert _local_task_status(settings) is TaskStatus.ACCEPTED


def test_a_notification_of_our_own_push_changes_nothing(
    referral_task_id: str, settings: Settings, client: TestClient
) -> None:
    response = _post(client, _about(f"Task/{referral_task_id}"))

    assert response.json()["outcomes"] == {"echo": 1}
    assert _local_task_status(settings) is TaskStatus.REQUESTED


def test_a_focus_on_another_server_is_reported_and_not_read(client: TestClient) -> None:
    response = _post(client, _about("https://elsewhere.test/fhir/Task/9"))

    assert response.status_code == 200
    assert response.json()["not_followed"] == ["https://elsewhere.test/fhir/Task/9"]
    assert response.json()["outcomes"] == {}
