"""Roles and teams: another team's patients look exactly like patients that do not exist (404);
a role that may not act at all gets 403."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.support import Tokens, billing, care_manager, supervisor, time_entry_body


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
