"""Enrollment with consent: created together, queued together, and its status can change. An
active enrollment meets its program's prerequisites (mappings/programs.yaml), and every member
it names is of the patient's team. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhirbridge.api import create_app
from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.persistence.scratch import Backend
from tests.api.bodies import enrollment_body
from tests.api.support import FakeClock, Tokens, care_manager, count_rows


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _enroll(**changes: Any) -> dict[str, Any]:
    return enrollment_body(**changes)


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


# -- program prerequisites -------------------------------------------------------------------


def test_a_ccm_enrollment_with_one_condition_is_rejected_naming_conditions(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    before = count_rows(database_url, "enrollments")
    response = client.post(
        "/enrollments", json=_enroll(conditions=["Condition/ehr-c-1011"]), headers=nora
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "conditions", "reason": "CCM needs at least 2 chronic conditions, got 1"}
    ]
    assert count_rows(database_url, "enrollments") == before


def test_a_ccm_enrollment_without_billing_practitioner_is_rejected(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.post("/enrollments", json=_enroll(billing_practitioner_id=None), headers=nora)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "billing_practitioner_id", "reason": "required for CCM"}
    ]


def test_a_pcm_enrollment_needs_only_one_condition(
    client: TestClient, nora: dict[str, str]
) -> None:
    body = _enroll(program="PCM", conditions=["Condition/ehr-c-1011"])
    assert client.post("/enrollments", json=body, headers=nora).status_code == 201


@pytest.mark.parametrize("status", ["planned", "waitlist"])
def test_a_planned_or_waitlisted_enrollment_may_lack_the_prerequisites(
    client: TestClient, nora: dict[str, str], status: str
) -> None:
    body = _enroll(status=status, conditions=[], billing_practitioner_id=None)
    assert client.post("/enrollments", json=body, headers=nora).status_code == 201


def test_an_enrollment_becomes_active_only_with_its_prerequisites(
    client: TestClient, nora: dict[str, str]
) -> None:
    body = _enroll(status="planned", conditions=[], billing_practitioner_id=None)
    planned = client.post("/enrollments", json=body, headers=nora).json()
    refused = client.patch(f"/enrollments/{planned['id']}", json={"status": "active"}, headers=nora)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == [
        "conditions",
        "billing_practitioner_id",
    ]
    assert client.get(f"/enrollments/{planned['id']}", headers=nora).json()["status"] == "planned"
    complete = {
        "status": "active",
        "conditions": ["Condition/ehr-c-1011", "Condition/ehr-c-1012"],
        "billing_practitioner_id": "sup-north",
    }
    accepted = client.patch(f"/enrollments/{planned['id']}", json=complete, headers=nora)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "active"


def test_an_active_enrollment_cannot_lose_a_prerequisite(
    client: TestClient, nora: dict[str, str]
) -> None:
    created = client.post("/enrollments", json=_enroll(), headers=nora).json()
    response = client.patch(
        f"/enrollments/{created['id']}", json={"conditions": ["Condition/ehr-c-1011"]}, headers=nora
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["conditions"]


def test_the_programs_file_decides_the_prerequisites(
    tmp_path: Path, settings: Settings, clock: FakeClock, nora: dict[str, str]
) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(PROJECT_ROOT / "mappings", mappings)
    programs = mappings / "programs.yaml"
    ccm = "conditions: {at_least: 2, named: chronic conditions}"
    programs.write_text(programs.read_text().replace(ccm, ccm.replace("2", "3"), 1))
    app = create_app(settings.model_copy(update={"mappings_dir": mappings}), clock=clock)
    with TestClient(app) as client:
        response = client.post("/enrollments", json=_enroll(), headers=nora)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "conditions", "reason": "CCM needs at least 3 chronic conditions, got 2"}
    ]


# -- references ------------------------------------------------------------------------------


@pytest.mark.parametrize("member", ["cm-south", "nobody"], ids=["other-team", "missing"])
@pytest.mark.parametrize(
    "field", ["care_manager_id", "billing_practitioner_id", "consent.recorded_by_id"]
)
def test_a_member_of_another_team_is_refused_as_a_missing_one(
    client: TestClient, nora: dict[str, str], field: str, member: str
) -> None:
    body = _enroll()
    if field.startswith("consent."):
        body["consent"] = {**body["consent"], "recorded_by_id": member}
    else:
        body[field] = member
    response = client.post("/enrollments", json=body, headers=nora)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "reason": "no such care team member"}]


@pytest.mark.parametrize("field", ["care_manager_id", "billing_practitioner_id"])
def test_an_update_naming_another_teams_member_is_refused(
    client: TestClient, nora: dict[str, str], field: str
) -> None:
    created = client.post("/enrollments", json=_enroll(), headers=nora).json()
    response = client.patch(f"/enrollments/{created['id']}", json={field: "cm-south"}, headers=nora)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "reason": "no such care team member"}]
