"""Onboarding through the API: supervisors add and change their team's patients and care-team
members, admins every team's, care managers only read them, billing not even that; another
team's record answers exactly like a missing one. This suite runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhirbridge.persistence.scratch import Backend
from tests.api.support import Tokens, billing, care_manager, count_rows, supervisor

MEMBERS = "/care-team-members"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def sam(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**supervisor())


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


@pytest.fixture
def admin(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(sub="user-admin", roles=["admin"])


def _patient(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "pat-north-9",
        "ehr_reference": "Patient/ehr-1009",
        "mrn_system": "urn:oid:2.16.840.1.113883.3.7001",
        "mrn_value": "MRN1009",
    }
    body.update(changes)
    return body


def _member(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "cm-north-9",
        "name": "Nia North",
        "role": "rn",
        "practitioner_reference": "Practitioner/pr-19",
        "npi": "1457390012",
    }
    body.update(changes)
    return body


def _fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


# -- patients ------------------------------------------------------------------------------


def test_a_supervisor_adds_a_patient_to_their_team(client: TestClient, sam: dict[str, str]) -> None:
    response = client.post("/patients", json=_patient(), headers=sam)

    assert response.status_code == 201, response.text
    assert response.json() == {**_patient(), "team": "north"}


def test_a_new_patient_is_read_back_by_the_team_and_queues_nothing_for_the_fhir_server(
    client: TestClient, sam: dict[str, str], nora: dict[str, str], database_url: str
) -> None:
    client.post("/patients", json=_patient(), headers=sam)

    assert client.get("/patients/pat-north-9", headers=nora).json()["team"] == "north"
    assert "pat-north-9" in [p["id"] for p in client.get("/patients", headers=nora).json()]
    assert count_rows(database_url, "outbox") == 0


def test_a_care_manager_may_not_add_a_patient(client: TestClient, nora: dict[str, str]) -> None:
    response = client.post("/patients", json=_patient(), headers=nora)

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


def test_billing_may_not_list_patients(client: TestClient, tokens: Tokens) -> None:
    assert client.get("/patients", headers=tokens.headers(**billing())).status_code == 403


def test_a_supervisor_may_not_add_a_patient_to_another_team(
    client: TestClient, sam: dict[str, str], database_url: str
) -> None:
    response = client.post("/patients", json=_patient(team="south"), headers=sam)

    assert response.status_code == 422
    assert _fields(response) == ["team"]
    assert count_rows(database_url, "patient_links", id="pat-north-9") == 0


def test_an_admin_adds_a_patient_to_any_team(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post("/patients", json=_patient(team="south"), headers=admin)

    assert response.status_code == 201, response.text
    assert response.json()["team"] == "south"


def test_an_admin_without_a_team_must_name_one_for_a_new_patient(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post("/patients", json=_patient(), headers=admin)

    assert response.status_code == 422
    assert _fields(response) == ["team"]


def test_a_patient_id_already_in_use_is_a_conflict(client: TestClient, sam: dict[str, str]) -> None:
    response = client.post("/patients", json=_patient(id="pat-south-1"), headers=sam)

    assert response.status_code == 409
    assert response.json()["errors"] == [{"field": "id", "reason": "already in use"}]


def test_an_ehr_patient_linked_twice_is_a_conflict(client: TestClient, sam: dict[str, str]) -> None:
    response = client.post(
        "/patients", json=_patient(ehr_reference="Patient/ehr-1001"), headers=sam
    )

    assert response.status_code == 409
    assert _fields(response) == ["ehr_reference"]


def test_a_patient_without_required_fields_is_refused_naming_them(
    client: TestClient, sam: dict[str, str]
) -> None:
    response = client.post("/patients", json={"mrn_value": "x"}, headers=sam)

    assert response.status_code == 422
    assert sorted(_fields(response)) == ["ehr_reference", "id"]


def test_an_ehr_reference_to_another_resource_type_is_refused(
    client: TestClient, sam: dict[str, str]
) -> None:
    response = client.post("/patients", json=_patient(ehr_reference="Practitioner/1"), headers=sam)

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "ehr_reference", "reason": "a reference like Patient/123"}
    ]


def test_an_mrn_value_without_its_system_is_refused(
    client: TestClient, sam: dict[str, str]
) -> None:
    response = client.post("/patients", json=_patient(mrn_system=None), headers=sam)

    assert response.status_code == 422
    assert _fields(response) == ["mrn_value"]


def test_a_supervisor_changes_a_patients_ehr_link(client: TestClient, sam: dict[str, str]) -> None:
    response = client.patch(
        "/patients/pat-north-2", json={"ehr_reference": "Patient/ehr-1002-b"}, headers=sam
    )

    assert response.status_code == 200, response.text
    assert response.json()["ehr_reference"] == "Patient/ehr-1002-b"


def test_an_mrn_sent_as_null_is_emptied(client: TestClient, sam: dict[str, str]) -> None:
    client.post("/patients", json=_patient(), headers=sam)

    response = client.patch(
        "/patients/pat-north-9", json={"mrn_system": None, "mrn_value": None}, headers=sam
    )

    assert (response.json()["mrn_system"], response.json()["mrn_value"]) == (None, None)


def test_another_teams_patient_answers_like_a_missing_one(
    client: TestClient, sam: dict[str, str]
) -> None:
    other = client.patch("/patients/pat-south-1", json={"mrn_value": "x"}, headers=sam)
    missing = client.patch("/patients/pat-nobody", json={"mrn_value": "x"}, headers=sam)

    assert other.status_code == missing.status_code == 404
    assert other.json()["errors"] == missing.json()["errors"]
    assert other.json()["title"] == missing.json()["title"]


def test_a_supervisor_may_not_move_a_patient_to_another_team(
    client: TestClient, sam: dict[str, str]
) -> None:
    response = client.patch("/patients/pat-north-2", json={"team": "south"}, headers=sam)

    assert response.status_code == 422
    assert _fields(response) == ["team"]


def test_an_admin_lists_every_teams_patients_unless_naming_one(
    client: TestClient, admin: dict[str, str]
) -> None:
    every = client.get("/patients", headers=admin).json()
    south = client.get("/patients", params={"team": "south"}, headers=admin).json()

    assert [p["id"] for p in every] == ["pat-north-1", "pat-north-2", "pat-south-1"]
    assert [p["id"] for p in south] == ["pat-south-1"]


def test_a_care_manager_may_not_list_another_teams_patients(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.get("/patients", params={"team": "south"}, headers=nora)

    assert response.status_code == 422
    assert _fields(response) == ["team"]


def test_a_retried_patient_creation_replays_the_first_answer(
    client: TestClient, sam: dict[str, str]
) -> None:
    headers = {**sam, "Idempotency-Key": "onboard-9"}
    first = client.post("/patients", json=_patient(), headers=headers)
    again = client.post("/patients", json=_patient(), headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"


# -- care-team members ---------------------------------------------------------------------


def test_a_supervisor_adds_a_care_team_member(client: TestClient, sam: dict[str, str]) -> None:
    response = client.post(MEMBERS, json=_member(), headers=sam)

    assert response.status_code == 201, response.text
    assert response.json() == {**_member(), "team": "north"}


def test_a_care_manager_reads_their_teams_members_by_name(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.get(MEMBERS, headers=nora)

    assert [m["name"] for m in response.json()] == ["Ned North", "Nora North", "Sam Supervisor"]


def test_a_care_manager_reads_one_member(client: TestClient, nora: dict[str, str]) -> None:
    response = client.get(f"{MEMBERS}/sup-north", headers=nora)

    assert response.json()["practitioner_reference"] == "Practitioner/pr-12"


def test_another_teams_member_answers_like_a_missing_one(
    client: TestClient, nora: dict[str, str]
) -> None:
    other = client.get(f"{MEMBERS}/cm-south", headers=nora)
    missing = client.get(f"{MEMBERS}/cm-nobody", headers=nora)

    assert other.status_code == missing.status_code == 404
    assert other.json()["errors"] == missing.json()["errors"]


def test_a_care_manager_may_not_change_a_member(client: TestClient, nora: dict[str, str]) -> None:
    response = client.patch(f"{MEMBERS}/cm-north-2", json={"role": "rn"}, headers=nora)

    assert response.status_code == 403


def test_billing_may_not_read_members(client: TestClient, tokens: Tokens) -> None:
    assert client.get(MEMBERS, headers=tokens.headers(**billing())).status_code == 403


def test_a_supervisor_changes_a_members_role(client: TestClient, sam: dict[str, str]) -> None:
    response = client.patch(f"{MEMBERS}/cm-north-2", json={"role": "lcsw"}, headers=sam)

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "lcsw"


def test_a_member_id_already_in_use_is_a_conflict(client: TestClient, sam: dict[str, str]) -> None:
    response = client.post(MEMBERS, json=_member(id="cm-south"), headers=sam)

    assert response.status_code == 409
    assert _fields(response) == ["id"]


def test_a_practitioner_linked_to_two_members_is_a_conflict(
    client: TestClient, sam: dict[str, str]
) -> None:
    response = client.post(
        MEMBERS, json=_member(practitioner_reference="Practitioner/pr-11"), headers=sam
    )

    assert response.status_code == 409
    assert _fields(response) == ["practitioner_reference"]


def test_a_member_with_a_bad_role_and_npi_is_refused_naming_both(
    client: TestClient, sam: dict[str, str], database_url: str
) -> None:
    response = client.post(MEMBERS, json=_member(role="surgeon", npi="12345"), headers=sam)

    assert response.status_code == 422
    assert sorted(_fields(response)) == ["npi", "role"]
    assert count_rows(database_url, "care_team_members", id="cm-north-9") == 0


def test_a_practitioner_reference_to_a_patient_is_refused(
    client: TestClient, sam: dict[str, str]
) -> None:
    response = client.post(
        MEMBERS, json=_member(practitioner_reference="Patient/ehr-1001"), headers=sam
    )

    assert response.status_code == 422
    assert _fields(response) == ["practitioner_reference"]


def test_a_supervisor_may_not_change_another_teams_member(
    client: TestClient, sam: dict[str, str]
) -> None:
    response = client.patch(f"{MEMBERS}/cm-south", json={"name": "X"}, headers=sam)

    assert response.status_code == 404


def test_an_admin_adds_a_member_to_any_team(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(MEMBERS, json=_member(team="south"), headers=admin)

    assert response.status_code == 201, response.text
    assert response.json()["team"] == "south"


def test_an_id_that_cannot_be_a_path_segment_is_refused(
    client: TestClient, sam: dict[str, str]
) -> None:
    response = client.post("/patients", json=_patient(id="north/9"), headers=sam)

    assert response.status_code == 422
    assert _fields(response) == ["id"]
