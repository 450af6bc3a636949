"""Enrollment with consent: created together, queued together, and its status can change."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.support import Tokens, care_manager, count_rows


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _enroll(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": "pat-north-2",
        "program": "CCM",
        "start": "2026-10-01",
        "consent": {"given_on": "2026-10-01", "method": "written"},
    }
    body.update(changes)
    return body


def test_an_enrollment_is_created_with_its_consent(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    response = client.post("/enrollments", json=_enroll(), headers=nora)
    assert response.status_code == 201, response.text
    enrollment = response.json()
    assert enrollment["status"] == "active"
    [consent] = enrollment["consents"]
    assert consent["recorded_by_id"] == "cm-north"
    assert count_rows(database_url, "outbox", resource_type="EpisodeOfCare") == 1
    assert count_rows(database_url, "outbox", resource_type="Consent") == 1


def test_time_can_be_recorded_once_the_enrollment_exists(
    client: TestClient, nora: dict[str, str]
) -> None:
    client.post("/enrollments", json=_enroll(), headers=nora)
    entry = {
        "patient_id": "pat-north-2",
        "program": "CCM",
        "activity": "assessment",
        "mode": "in-person",
        "start": "2026-10-02T09:00:00Z",
        "end": "2026-10-02T09:45:00Z",
    }
    assert client.post("/time-entries", json=entry, headers=nora).status_code == 201


def test_an_enrollment_status_is_updated(client: TestClient, nora: dict[str, str]) -> None:
    created = client.post("/enrollments", json=_enroll(), headers=nora).json()
    response = client.patch(
        f"/enrollments/{created['id']}",
        json={"status": "finished", "end": "2026-10-31"},
        headers=nora,
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["end"]) == ("finished", "2026-10-31")


def test_an_enrollment_ending_before_it_starts_is_rejected_and_writes_nothing(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    before = count_rows(database_url, "enrollments")
    response = client.post("/enrollments", json=_enroll(end="2026-09-01"), headers=nora)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "end", "reason": "before start"}]
    assert count_rows(database_url, "enrollments") == before
    assert count_rows(database_url, "program_consents", patient_id="pat-north-2") == 1
    assert count_rows(database_url, "outbox") == 0


def test_a_consent_dated_in_the_future_is_rejected(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.post(
        "/enrollments",
        json=_enroll(consent={"given_on": "2026-12-01", "method": "verbal"}),
        headers=nora,
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "consent.given_on", "reason": "in the future"}]
