"""Read-only FHIR views show what a record maps to before (and after) it is pushed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fhirbridge.persistence import (
    EntityKind,
    FhirLink,
    Store,
    unit_of_work,
)
from tests.api.support import Tokens, care_manager, time_entry_body
from tests.sessions import session_factory


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _entry_id(client: TestClient, headers: dict[str, str]) -> str:
    entry_id: str = client.post("/time-entries", json=time_entry_body(), headers=headers).json()[
        "id"
    ]
    return entry_id


def test_a_time_entry_is_viewed_as_a_us_core_encounter(
    client: TestClient, nora: dict[str, str]
) -> None:
    entry_id = _entry_id(client, nora)
    response = client.get(f"/fhir-view/time-entries/{entry_id}", headers=nora)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    encounter = response.json()
    assert encounter["resourceType"] == "Encounter"
    assert encounter["status"] == "finished"
    assert encounter["subject"] == {"reference": "Patient/ehr-1001"}
    assert encounter["period"]["start"].startswith("2026-10-14T14:00:00")
    assert {"system": "urn:fhirbridge:local", "value": f"time-entry/{entry_id}"} in encounter[
        "identifier"
    ]
    assert encounter["participant"][0]["individual"] == {"reference": "Practitioner/pr-11"}


def test_a_view_keeps_the_notes_local(client: TestClient, nora: dict[str, str]) -> None:
    entry_id = _entry_id(client, nora)
    response = client.get(f"/fhir-view/time-entries/{entry_id}", headers=nora)
    assert "glucose meter" not in response.text


def test_an_unpushed_enrollment_is_referenced_by_a_typed_placeholder(
    client: TestClient, nora: dict[str, str]
) -> None:
    entry_id = _entry_id(client, nora)
    encounter = client.get(f"/fhir-view/time-entries/{entry_id}", headers=nora).json()
    [episode] = encounter["episodeOfCare"]
    assert episode["reference"].startswith("urn:uuid:")
    assert episode["type"] == "EpisodeOfCare"


def test_a_pushed_enrollment_is_referenced_by_its_server_id(
    app: FastAPI, client: TestClient, nora: dict[str, str]
) -> None:
    with unit_of_work(session_factory(app.state.engine)) as session:
        Store(session).fhir_links.upsert(
            FhirLink(
                entity_kind=EntityKind.ENROLLMENT,
                local_id="enr-north-1-ccm",
                resource_type="EpisodeOfCare",
                server_id="eoc-77",
                synced_at=datetime(2026, 10, 1, tzinfo=UTC),
            )
        )
    entry_id = _entry_id(client, nora)
    encounter = client.get(f"/fhir-view/time-entries/{entry_id}", headers=nora).json()
    assert encounter["episodeOfCare"] == [{"reference": "EpisodeOfCare/eoc-77"}]


def test_another_teams_record_has_no_view(client: TestClient, tokens: Tokens) -> None:
    response = client.get(
        "/fhir-view/enrollments/enr-south-1-ccm", headers=tokens.headers(**care_manager())
    )
    assert response.status_code == 404
