"""Roles and teams: another team's patients, and every record about them, look exactly like
ones that do not exist (404, the same body but for the id); a role that may not act at all gets
403. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhirbridge.persistence.scratch import Backend
from tests.api.support import Tokens, billing, care_manager, supervisor, time_entry_body
from tests.conftest import FIXTURES

MISSING = "no-such-record"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


def test_a_care_manager_reads_a_patient_of_their_team(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/patients/pat-north-1", headers=tokens.headers(**care_manager()))
    assert response.status_code == 200
    assert response.json()["ehr_reference"] == "Patient/ehr-1001"


def test_another_teams_patient_answers_like_a_missing_one(
    client: TestClient, tokens: Tokens
) -> None:
    headers = tokens.headers(**care_manager())
    other_team = client.get("/patients/pat-south-1", headers=headers)
    missing = client.get("/patients/no-such-patient", headers=headers)
    assert other_team.status_code == missing.status_code == 404
    assert other_team.json()["type"] == missing.json()["type"]
    assert other_team.json()["title"] == missing.json()["title"]


def test_a_care_manager_cannot_record_time_for_another_teams_patient(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.post(
        "/time-entries",
        json=time_entry_body(patient_id="pat-south-1"),
        headers=tokens.headers(**care_manager()),
    )
    assert response.status_code == 404


def test_another_teams_time_entry_is_not_found(client: TestClient, tokens: Tokens) -> None:
    south = tokens.headers(**care_manager("cm-south", team="south"))
    created = client.post(
        "/time-entries", json=time_entry_body(patient_id="pat-south-1"), headers=south
    )
    assert created.status_code == 201, created.text
    north = tokens.headers(**care_manager())
    assert client.get(f"/time-entries/{created.json()['id']}", headers=north).status_code == 404


def test_a_patient_list_holds_only_the_callers_team(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/patients", headers=tokens.headers(**care_manager()))
    assert [p["id"] for p in response.json()] == ["pat-north-1", "pat-north-2"]


def test_billing_may_not_record_time(client: TestClient, tokens: Tokens) -> None:
    response = client.post(
        "/time-entries", json=time_entry_body(), headers=tokens.headers(**billing())
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


def test_billing_reads_the_monthly_minutes_report(client: TestClient, tokens: Tokens) -> None:
    client.post("/time-entries", json=time_entry_body(), headers=tokens.headers(**care_manager()))
    response = client.get(
        "/reports/minutes",
        params={"month": "2026-10", "team": "north"},
        headers=tokens.headers(**billing()),
    )
    assert response.status_code == 200
    assert response.json() == [
        {"patient_id": "pat-north-1", "program": "CCM", "minutes": 25, "entries": 1}
    ]


def test_a_care_manager_may_not_read_reports(client: TestClient, tokens: Tokens) -> None:
    response = client.get(
        "/reports/minutes", params={"month": "2026-10"}, headers=tokens.headers(**care_manager())
    )
    assert response.status_code == 403


def test_a_care_manager_cannot_record_time_as_someone_else(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.post(
        "/time-entries",
        json=time_entry_body(staff_id="cm-north-2"),
        headers=tokens.headers(**care_manager()),
    )
    assert response.status_code == 403


def test_a_care_manager_cannot_edit_a_colleagues_entry(client: TestClient, tokens: Tokens) -> None:
    ned = tokens.headers(**care_manager("cm-north-2"))
    entry_id = client.post("/time-entries", json=time_entry_body(), headers=ned).json()["id"]
    response = client.patch(
        f"/time-entries/{entry_id}", json={"notes": "x"}, headers=tokens.headers(**care_manager())
    )
    assert response.status_code == 403


def test_a_supervisor_edits_an_entry_of_their_team(client: TestClient, tokens: Tokens) -> None:
    ned = tokens.headers(**care_manager("cm-north-2"))
    entry_id = client.post("/time-entries", json=time_entry_body(), headers=ned).json()["id"]
    response = client.patch(
        f"/time-entries/{entry_id}",
        json={"activity": "education"},
        headers=tokens.headers(**supervisor()),
    )
    assert response.status_code == 200
    assert response.json()["activity"] == "education"


def test_a_supervisor_of_another_team_does_not_see_the_patient(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.get("/patients/pat-north-1", headers=tokens.headers(**supervisor("south")))
    assert response.status_code == 404


def test_a_token_without_a_known_role_is_forbidden(client: TestClient, tokens: Tokens) -> None:
    response = client.get(
        "/patients/pat-north-1", headers=tokens.headers(sub="someone", roles=["visitor"])
    )
    assert response.status_code == 403


# -- another team's record answers as a missing one ------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # "{id}" stands for the record id
    body: dict[str, Any] | None = None


# Every route that names a record, by the kind its "not found" names.
ROUTES: dict[str, list[Call]] = {
    "enrollment": [
        Call("GET", "/enrollments/{id}"),
        Call("PATCH", "/enrollments/{id}", {"risk_level": "high"}),
        Call("PATCH", "/enrollments/{id}/consents/con-north-1-ccm", {"status": "inactive"}),
        Call("GET", "/fhir-view/enrollments/{id}"),
    ],
    "consent": [
        # Under the caller's own enrollment: a consent of another is not there either.
        Call("PATCH", "/enrollments/enr-south-1-ccm/consents/{id}", {"status": "inactive"}),
        Call("GET", "/fhir-view/consents/{id}"),
    ],
    "care plan": [
        Call("GET", "/care-plans/{id}"),
        Call("PATCH", "/care-plans/{id}", {"title": "Ours now"}),
        Call("GET", "/fhir-view/care-plans/{id}"),
    ],
    "goal": [
        Call("GET", "/goals/{id}"),
        Call("PATCH", "/goals/{id}", {"lifecycle_status": "active"}),
        Call("GET", "/fhir-view/goals/{id}"),
    ],
    "care task": [
        Call("GET", "/care-tasks/{id}"),
        Call("PATCH", "/care-tasks/{id}", {"status": "accepted"}),
        Call("GET", "/fhir-view/care-tasks/{id}"),
    ],
    "referral": [
        Call("GET", "/referrals/{id}"),
        Call("PATCH", "/referrals/{id}", {"task_status": "cancelled", "reason": "Not ours"}),
    ],
    "time entry": [
        Call("GET", "/time-entries/{id}"),
        Call("PATCH", "/time-entries/{id}", {"notes": "ours now"}),
        Call("DELETE", "/time-entries/{id}"),
        Call("GET", "/time-entries/{id}/audit"),
        Call("GET", "/fhir-view/time-entries/{id}"),
    ],
}


def _north_records(client: TestClient, tokens: Tokens) -> dict[str, str]:
    """One record of each kind about a patient of team north; the id by kind."""
    nora = tokens.headers(**care_manager())

    def created(path: str, body: dict[str, Any]) -> str:
        response = client.post(path, json=body, headers=nora)
        assert response.status_code == 201, response.text
        record_id: str = response.json()["id"]
        return record_id

    referral = json.loads((FIXTURES / "workflow" / "referral_food.json").read_text())
    return {
        "enrollment": "enr-north-1-ccm",
        "consent": "con-north-1-ccm",
        "care plan": created("/care-plans", {"patient_id": "pat-north-1", "title": "CCM"}),
        "goal": created("/goals", {"patient_id": "pat-north-1", "description": "A1c below 7"}),
        "care task": created("/care-tasks", {"patient_id": "pat-north-1", "kind": "check-in-call"}),
        "referral": created("/referrals", referral),
        "time entry": created("/time-entries", time_entry_body()),
    }


def _send(client: TestClient, call: Call, record_id: str, headers: dict[str, str]) -> Any:
    path = call.path.format(id=record_id)
    return client.request(call.method, path, json=call.body, headers=headers)


@pytest.mark.parametrize("kind", list(ROUTES))
def test_another_teams_record_answers_byte_for_byte_as_a_missing_one(
    client: TestClient, tokens: Tokens, kind: str
) -> None:
    record_id = _north_records(client, tokens)[kind]
    sue = tokens.headers(**care_manager("cm-south", team="south"))
    for call in ROUTES[kind]:
        theirs = _send(client, call, record_id, sue)
        missing = _send(client, call, MISSING, sue)
        where = f"{call.method} {call.path}"
        assert theirs.status_code == missing.status_code == 404, where
        assert theirs.json()["detail"] == f"no {kind} {record_id!r}", where
        assert theirs.content.replace(record_id.encode(), MISSING.encode()) == missing.content
        assert theirs.headers["content-type"] == missing.headers["content-type"]


@pytest.mark.parametrize("kind", list(ROUTES))
def test_the_owning_team_still_reaches_every_record(
    client: TestClient, tokens: Tokens, kind: str
) -> None:
    record_id = _north_records(client, tokens)[kind]
    nora = tokens.headers(**care_manager())
    reads = [call for call in ROUTES[kind] if call.method == "GET"]
    for call in reads:
        assert _send(client, call, record_id, nora).status_code == 200, call.path


def test_time_for_another_teams_enrollment_is_refused_as_for_a_missing_one(
    client: TestClient, tokens: Tokens
) -> None:
    nora = tokens.headers(**care_manager())

    def errors(enrollment_id: str) -> Any:
        body = time_entry_body(enrollment_id=enrollment_id)
        response = client.post("/time-entries", json=body, headers=nora)
        assert response.status_code == 422, response.text
        return response.json()["errors"]

    assert errors("enr-south-1-ccm") == errors(MISSING)
    assert [e["field"] for e in errors(MISSING)] == ["enrollment_id"]
