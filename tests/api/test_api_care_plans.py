"""Care tasks follow the R4 Task state machine; plans list their tasks; every write is queued
for the FHIR server in the same transaction."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.support import Tokens, care_manager, count_rows


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
