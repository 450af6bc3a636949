"""Care tasks follow the R4 Task state machine; plans list their tasks; every write is queued
for the FHIR server in the same transaction. Every person or record a body names exists and is
the patient's team's (else 422 naming the field, the same reason for another team's record as
for a missing one). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhirbridge.persistence.scratch import Backend
from tests.api.support import Tokens, care_manager, count_rows, supervisor


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _task(client: TestClient, headers: dict[str, str], **changes: Any) -> Any:
    body = {"patient_id": "pat-north-1", "kind": "check-in-call", "owner_id": "cm-north"}
    response = client.post("/care-tasks", json={**body, **changes}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_task_moves_along_the_state_machine(client: TestClient, nora: dict[str, str]) -> None:
    task = _task(client, nora)
    response = client.patch(f"/care-tasks/{task['id']}", json={"status": "accepted"}, headers=nora)
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"


def test_a_transition_the_state_machine_forbids_is_a_409_naming_status(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    task = _task(client, nora)
    queued = count_rows(database_url, "outbox")
    response = client.patch(
        f"/care-tasks/{task['id']}", json={"status": "completed", "description": "x"}, headers=nora
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("/transition-refused")
    assert problem["errors"] == [
        {
            "field": "status",
            "reason": "requested -> completed: not a transition of the R4 Task state machine",
        }
    ]
    unchanged = client.get(f"/care-tasks/{task['id']}", headers=nora).json()
    assert unchanged == task
    assert count_rows(database_url, "outbox") == queued


def test_a_care_manager_cannot_change_a_colleagues_task(
    client: TestClient, nora: dict[str, str], tokens: Tokens
) -> None:
    task = _task(client, nora, owner_id="cm-north-2")
    response = client.patch(f"/care-tasks/{task['id']}", json={"status": "accepted"}, headers=nora)
    assert response.status_code == 403


def test_a_task_created_under_a_plan_is_listed_by_the_plan(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    plan = client.post(
        "/care-plans", json={"patient_id": "pat-north-1", "title": "Diabetes"}, headers=nora
    ).json()
    task = _task(client, nora, care_plan_id=plan["id"])
    assert client.get(f"/care-plans/{plan['id']}", headers=nora).json()["task_ids"] == [task["id"]]
    assert count_rows(database_url, "outbox", local_id=plan["id"], resource_type="CarePlan") == 1


def test_a_goal_is_created_and_updated(client: TestClient, nora: dict[str, str]) -> None:
    goal = client.post(
        "/goals", json={"patient_id": "pat-north-1", "description": "A1c below 7"}, headers=nora
    ).json()
    response = client.patch(
        f"/goals/{goal['id']}", json={"lifecycle_status": "active"}, headers=nora
    )
    assert response.json()["lifecycle_status"] == "active"


def test_a_plan_cannot_list_another_patients_goal(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    goal = client.post(
        "/goals", json={"patient_id": "pat-north-2", "description": "Sleep"}, headers=nora
    ).json()
    response = client.post(
        "/care-plans", json={"patient_id": "pat-north-1", "goal_ids": [goal["id"]]}, headers=nora
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["goal_ids"]
    assert count_rows(database_url, "care_plans") == 0


# -- references --------------------------------------------------------------------------------

NORTH_1 = "pat-north-1"


def _south_records(client: TestClient, tokens: Tokens) -> dict[str, str]:
    """A care plan and a goal of team south's patient, and the fixtures' south enrollment."""
    sue = tokens.headers(**care_manager("cm-south", team="south"))
    plan = client.post("/care-plans", json={"patient_id": "pat-south-1"}, headers=sue)
    goal = client.post(
        "/goals", json={"patient_id": "pat-south-1", "description": "Walk"}, headers=sue
    )
    assert plan.status_code == goal.status_code == 201, (plan.text, goal.text)
    return {
        "care plan": plan.json()["id"],
        "goal": goal.json()["id"],
        "enrollment": "enr-south-1-ccm",
        "member": "cm-south",
    }


# (route, body without the reference, field, kind of record the field names)
REFERENCES = [
    ("/goals", {"patient_id": NORTH_1, "description": "Walk"}, "expressed_by", "member"),
    ("/care-plans", {"patient_id": NORTH_1}, "author_id", "member"),
    ("/care-plans", {"patient_id": NORTH_1}, "enrollment_id", "enrollment"),
    ("/care-plans", {"patient_id": NORTH_1}, "goal_ids", "goal"),
    ("/care-tasks", {"patient_id": NORTH_1, "kind": "check-in-call"}, "owner_id", "member"),
    ("/care-tasks", {"patient_id": NORTH_1, "kind": "check-in-call"}, "care_plan_id", "care plan"),
]


@pytest.mark.parametrize(
    ("path", "body", "field", "kind"), REFERENCES, ids=[f"{r[0]}-{r[2]}" for r in REFERENCES]
)
def test_another_teams_reference_is_refused_as_a_missing_one(
    client: TestClient,
    nora: dict[str, str],
    tokens: Tokens,
    path: str,
    body: dict[str, Any],
    field: str,
    kind: str,
) -> None:
    theirs = _south_records(client, tokens)[kind]
    missing = "no-such-record"

    def errors(value: str) -> Any:
        reference = [value] if field == "goal_ids" else value
        response = client.post(path, json={**body, field: reference}, headers=nora)
        assert response.status_code == 422, response.text
        return response.json()["errors"]

    refused = errors(theirs)
    assert [e["field"] for e in refused] == [field]
    as_missing = [{**e, "reason": e["reason"].replace(theirs, missing)} for e in refused]
    assert as_missing == errors(missing)


def test_a_goal_expressed_by_an_unknown_member_is_refused(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    body = {"patient_id": NORTH_1, "description": "Walk", "expressed_by": "nobody"}
    response = client.post("/goals", json=body, headers=nora)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "expressed_by", "reason": "no such care team member"}
    ]
    assert count_rows(database_url, "goals") == 0


def test_a_goal_expressed_by_a_team_member_is_kept(
    client: TestClient, nora: dict[str, str]
) -> None:
    body = {"patient_id": NORTH_1, "description": "Walk", "expressed_by": "sup-north"}
    response = client.post("/goals", json=body, headers=nora)
    assert response.status_code == 201
    assert response.json()["expressed_by"] == "sup-north"


def test_a_task_owned_by_another_teams_member_never_reaches_their_worklist(
    client: TestClient, nora: dict[str, str], tokens: Tokens, database_url: str
) -> None:
    body = {"patient_id": NORTH_1, "kind": "check-in-call", "owner_id": "cm-south"}
    response = client.post("/care-tasks", json=body, headers=nora)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "owner_id", "reason": "no such care team member"}
    ]
    assert count_rows(database_url, "care_tasks") == 0
    sue = tokens.headers(**care_manager("cm-south", team="south"))
    worklist = client.get("/worklist", headers=sue)
    assert worklist.status_code == 200, worklist.text
    assert [i["patient_id"] for i in worklist.json()["items"] if i["patient_id"] == NORTH_1] == []


def test_a_task_cannot_be_handed_to_another_teams_member(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    boss = tokens.headers(**supervisor())
    task = _task(client, boss)
    queued = count_rows(database_url, "outbox")
    response = client.patch(
        f"/care-tasks/{task['id']}", json={"owner_id": "cm-south"}, headers=boss
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "owner_id", "reason": "no such care team member"}
    ]
    assert client.get(f"/care-tasks/{task['id']}", headers=boss).json()["owner_id"] == "cm-north"
    assert count_rows(database_url, "outbox") == queued
