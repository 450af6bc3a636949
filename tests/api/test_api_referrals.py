"""Referrals through the API: sending one queues its ServiceRequest and Gravity Task; the
requester may cancel (with a reason) or mark it entered-in-error, and nothing a performer
alone may do; other teams' referrals, and the members and records a referral names, do not
exist for the caller. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhirbridge.persistence.scratch import Backend
from tests.api.support import Tokens, billing, care_manager, count_rows, supervisor
from tests.conftest import FIXTURES

WORKFLOW = FIXTURES / "workflow"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


def referral_body(name: str = "referral_food", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((WORKFLOW / f"{name}.json").read_text())
    body.update(changes)
    return body


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _send(client: TestClient, headers: dict[str, str], **changes: Any) -> Any:
    response = client.post("/referrals", json=referral_body(**changes), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _errors(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


# -- sending -------------------------------------------------------------------------------


def test_a_sent_referral_is_active_and_requested(client: TestClient, nora: dict[str, str]) -> None:
    referral = _send(client, nora)
    assert (referral["status"], referral["task_status"]) == ("active", "requested")
    assert referral["requester_id"] == "cm-north"
    assert referral["authored_on"] == "2026-10-15T15:00:00Z"


def test_a_social_need_referral_carries_its_sdoh_category(
    client: TestClient, nora: dict[str, str]
) -> None:
    referral = _send(client, nora)
    assert referral["categories"] == [
        {"system": "sdohcc", "code": "food-insecurity", "display": "Food Insecurity"}
    ]


def test_a_sent_referral_is_queued_as_service_request_and_task(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    referral = _send(client, nora)
    queued = {
        resource: count_rows(
            database_url, "outbox", local_id=referral["id"], resource_type=resource
        )
        for resource in ("ServiceRequest", "Task")
    }
    assert queued == {"ServiceRequest": 1, "Task": 1}


def test_a_referral_sent_under_a_care_plan_is_listed_by_the_plan(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    plan = client.post(
        "/care-plans", json={"patient_id": "pat-north-1", "title": "CCM"}, headers=nora
    ).json()
    referral = _send(client, nora, care_plan_id=plan["id"])
    listed = count_rows(
        database_url, "care_plan_referrals", care_plan_id=plan["id"], referral_id=referral["id"]
    )
    assert (referral["care_plan_id"], listed) == (plan["id"], 1)


def test_a_referral_can_name_the_goal_it_serves(client: TestClient, nora: dict[str, str]) -> None:
    goal = client.post(
        "/goals", json={"patient_id": "pat-north-1", "description": "Food secure"}, headers=nora
    ).json()
    assert _send(client, nora, goal_id=goal["id"])["goal_id"] == goal["id"]


def test_a_specialist_referral_needs_no_sdoh_category(
    client: TestClient, nora: dict[str, str]
) -> None:
    referral = _send(client, nora, name="referral_specialist")
    assert (referral["kind"], referral["categories"]) == ("specialist", [])


def test_billing_staff_may_not_send_referrals(client: TestClient, tokens: Tokens) -> None:
    response = client.post("/referrals", json=referral_body(), headers=tokens.headers(**billing()))
    assert response.status_code == 403


# -- validation ----------------------------------------------------------------------------


def test_a_social_need_referral_without_category_is_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    response = client.post("/referrals", json=referral_body(categories=[]), headers=nora)
    assert response.status_code == 422
    assert _errors(response) == ["categories"]
    assert count_rows(database_url, "referrals") == 0


def test_a_category_outside_the_sdoh_value_set_is_rejected(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.post("/referrals", json=referral_body(categories=["hunger"]), headers=nora)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "categories", "reason": "not SDOH categories: hunger"}
    ]


def test_a_service_code_from_an_unmapped_system_is_rejected(
    client: TestClient, nora: dict[str, str]
) -> None:
    body = referral_body(service={"system": "cpt", "code": "99490"})
    response = client.post("/referrals", json=body, headers=nora)
    assert response.status_code == 422
    assert _errors(response) == ["service.system"]


def test_a_referral_without_reason_is_rejected(client: TestClient, nora: dict[str, str]) -> None:
    body = referral_body()
    del body["reason"]
    response = client.post("/referrals", json=body, headers=nora)
    assert response.status_code == 422
    assert _errors(response) == ["reason"]


def test_a_requester_without_practitioner_reference_is_rejected(
    client: TestClient, tokens: Tokens
) -> None:
    # The Gravity Task requires a requester; Ned has no Practitioner on the EHR.
    ned = tokens.headers(**care_manager("cm-north-2"))
    response = client.post("/referrals", json=referral_body(), headers=ned)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "requester_id", "reason": "has no Practitioner reference"}
    ]


def test_another_patients_goal_is_rejected(client: TestClient, nora: dict[str, str]) -> None:
    goal = client.post(
        "/goals", json={"patient_id": "pat-north-2", "description": "Sleep"}, headers=nora
    ).json()
    response = client.post("/referrals", json=referral_body(goal_id=goal["id"]), headers=nora)
    assert response.status_code == 422
    assert _errors(response) == ["goal_id"]


def test_a_performer_that_is_not_an_organization_reference_is_rejected(
    client: TestClient, nora: dict[str, str]
) -> None:
    body = referral_body(performer_reference="Practitioner/pr-1")
    response = client.post("/referrals", json=body, headers=nora)
    assert response.status_code == 422
    assert _errors(response) == ["performer_reference"]


def test_unknown_fields_are_refused(client: TestClient, nora: dict[str, str]) -> None:
    response = client.post("/referrals", json=referral_body(task_status="completed"), headers=nora)
    assert response.status_code == 422
    assert _errors(response) == ["task_status"]


def test_a_care_manager_may_not_send_in_a_colleagues_name(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.post("/referrals", json=referral_body(requester_id="sup-north"), headers=nora)
    assert response.status_code == 403


def test_a_supervisor_may_send_in_a_team_members_name(client: TestClient, tokens: Tokens) -> None:
    headers = tokens.headers(**supervisor())
    referral = _send(client, headers, requester_id="cm-north")
    assert referral["requester_id"] == "cm-north"


# -- reading -------------------------------------------------------------------------------


def test_a_referral_is_read_back_as_sent(client: TestClient, nora: dict[str, str]) -> None:
    referral = _send(client, nora, name="referral_specialist")
    assert client.get(f"/referrals/{referral['id']}", headers=nora).json() == referral


def test_a_patients_referrals_are_listed_oldest_first(
    client: TestClient, nora: dict[str, str], clock: Any
) -> None:
    first = _send(client, nora)
    clock.advance(minutes=5)
    second = _send(client, nora, name="referral_specialist")
    listed = client.get("/referrals", params={"patient_id": "pat-north-1"}, headers=nora).json()
    assert [r["id"] for r in listed] == [first["id"], second["id"]]


def test_listing_by_tracker_status_keeps_only_those(
    client: TestClient, nora: dict[str, str]
) -> None:
    waiting = _send(client, nora)
    cancelled = _send(client, nora, name="referral_specialist")
    client.patch(
        f"/referrals/{cancelled['id']}",
        json={"task_status": "cancelled", "reason": "Patient moved away"},
        headers=nora,
    )
    listed = client.get(
        "/referrals",
        params={"patient_id": "pat-north-1", "task_status": "requested"},
        headers=nora,
    ).json()
    assert [r["id"] for r in listed] == [waiting["id"]]


def test_another_teams_referral_is_not_found(
    client: TestClient, nora: dict[str, str], tokens: Tokens
) -> None:
    referral = _send(client, nora)
    sue = tokens.headers(**care_manager("cm-south", team="south"))
    response = client.get(f"/referrals/{referral['id']}", headers=sue)
    assert response.status_code == 404
    assert response.json()["detail"] == f"no referral {referral['id']!r}"


def test_another_teams_patient_has_no_referrals_to_list(
    client: TestClient, nora: dict[str, str], tokens: Tokens
) -> None:
    _send(client, nora)
    sue = tokens.headers(**care_manager("cm-south", team="south"))
    response = client.get("/referrals", params={"patient_id": "pat-north-1"}, headers=sue)
    assert response.status_code == 404


def test_another_team_cannot_cancel_a_referral(
    client: TestClient, nora: dict[str, str], tokens: Tokens
) -> None:
    referral = _send(client, nora)
    sue = tokens.headers(**care_manager("cm-south", team="south"))
    response = client.patch(
        f"/referrals/{referral['id']}",
        json={"task_status": "cancelled", "reason": "Not ours"},
        headers=sue,
    )
    assert response.status_code == 404


def test_referring_another_teams_patient_is_not_found(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.post("/referrals", json=referral_body(patient_id="pat-south-1"), headers=nora)
    assert response.status_code == 404


# -- the requester's moves -----------------------------------------------------------------


def test_cancelling_revokes_the_order(client: TestClient, nora: dict[str, str]) -> None:
    referral = _send(client, nora)
    response = client.patch(
        f"/referrals/{referral['id']}",
        json={"task_status": "cancelled", "reason": "Patient declined"},
        headers=nora,
    )
    assert response.status_code == 200
    changed = response.json()
    assert (changed["task_status"], changed["status"]) == ("cancelled", "revoked")
    assert changed["task_status_reason"] == "Patient declined"


def test_cancelling_queues_both_resources_again(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    # The first push has not happened yet: the pending entries coalesce, one per resource.
    referral = _send(client, nora)
    client.patch(
        f"/referrals/{referral['id']}",
        json={"task_status": "cancelled", "reason": "Patient declined"},
        headers=nora,
    )
    assert count_rows(database_url, "outbox", local_id=referral["id"]) == 2


def test_cancelling_without_a_reason_is_rejected(client: TestClient, nora: dict[str, str]) -> None:
    referral = _send(client, nora)
    response = client.patch(
        f"/referrals/{referral['id']}", json={"task_status": "cancelled"}, headers=nora
    )
    assert response.status_code == 422
    assert _errors(response) == ["reason"]


def test_marking_entered_in_error_withdraws_the_order(
    client: TestClient, nora: dict[str, str]
) -> None:
    referral = _send(client, nora)
    response = client.patch(
        f"/referrals/{referral['id']}", json={"task_status": "entered-in-error"}, headers=nora
    )
    assert (response.json()["task_status"], response.json()["status"]) == (
        "entered-in-error",
        "entered-in-error",
    )


def test_completing_is_the_performers_move_and_is_refused(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    referral = _send(client, nora)
    queued = count_rows(database_url, "outbox")
    response = client.patch(
        f"/referrals/{referral['id']}", json={"task_status": "completed"}, headers=nora
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("/transition-refused")
    assert problem["errors"] == [
        {"field": "task_status", "reason": "requested -> completed: only the performer may set it"}
    ]
    assert client.get(f"/referrals/{referral['id']}", headers=nora).json() == referral
    assert count_rows(database_url, "outbox") == queued


def test_accepting_is_the_performers_move_and_is_refused(
    client: TestClient, nora: dict[str, str]
) -> None:
    referral = _send(client, nora)
    response = client.patch(
        f"/referrals/{referral['id']}", json={"task_status": "accepted"}, headers=nora
    )
    assert response.status_code == 409
    assert _errors(response) == ["task_status"]


def test_a_status_gravity_does_not_allow_for_referrals_is_refused(
    client: TestClient, nora: dict[str, str]
) -> None:
    referral = _send(client, nora)
    response = client.patch(
        f"/referrals/{referral['id']}", json={"task_status": "ready"}, headers=nora
    )
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {
            "field": "task_status",
            "reason": "requested -> ready: status not allowed for referral tasks",
        }
    ]


def test_a_cancelled_referral_cannot_be_marked_entered_in_error(
    client: TestClient, nora: dict[str, str]
) -> None:
    referral = _send(client, nora)
    url = f"/referrals/{referral['id']}"
    client.patch(url, json={"task_status": "cancelled", "reason": "Duplicate"}, headers=nora)
    response = client.patch(url, json={"task_status": "entered-in-error"}, headers=nora)
    assert response.status_code == 409
    machine = "not a transition of the R4 Task state machine"
    assert response.json()["errors"] == [
        {"field": "task_status", "reason": f"cancelled -> entered-in-error: {machine}"}
    ]


def test_an_unknown_referral_is_not_found(client: TestClient, nora: dict[str, str]) -> None:
    response = client.patch(
        "/referrals/nope", json={"task_status": "entered-in-error"}, headers=nora
    )
    assert response.status_code == 404


# -- references ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "theirs"),
    [
        ("requester_id", "cm-south"),
        ("consent_id", "con-south-1-ccm"),
        ("goal_id", "south goal"),
        ("care_plan_id", "south care plan"),
    ],
)
def test_another_teams_reference_is_refused_as_a_missing_one(
    client: TestClient, tokens: Tokens, field: str, theirs: str
) -> None:
    sue = tokens.headers(**care_manager("cm-south", team="south"))
    created = {
        "south goal": ("/goals", {"patient_id": "pat-south-1", "description": "Food"}),
        "south care plan": ("/care-plans", {"patient_id": "pat-south-1"}),
    }
    if theirs in created:
        path, body = created[theirs]
        theirs = client.post(path, json=body, headers=sue).json()["id"]
    boss = tokens.headers(**supervisor())  # only a supervisor may name another requester

    def errors(value: str) -> Any:
        response = client.post("/referrals", json=referral_body(**{field: value}), headers=boss)
        assert response.status_code == 422, response.text
        return response.json()["errors"]

    refused = errors(theirs)
    assert [e["field"] for e in refused] == [field]
    assert refused == errors("no-such-record")


def test_the_timeline_says_who_sent_and_who_cancelled_when(
    client: TestClient, nora: dict[str, str]
) -> None:
    referral = _send(client, nora)
    client.patch(
        f"/referrals/{referral['id']}",
        json={"task_status": "cancelled", "reason": "Patient declined"},
        headers=nora,
    )
    response = client.get(f"/referrals/{referral['id']}/timeline", headers=nora)
    assert response.status_code == 200
    moves = [(e["action"], e["before"], e["after"]) for e in response.json()]
    assert moves == [
        ("sent", None, {"task_status": "requested"}),
        ("requester moved", {"task_status": "requested"}, {"task_status": "cancelled"}),
    ]
    assert {e["actor"] for e in response.json()} == {"user:user-cm-north"}


def test_another_teams_referral_timeline_is_not_found(
    client: TestClient, nora: dict[str, str], tokens: Tokens
) -> None:
    referral = _send(client, nora)
    sue = tokens.headers(**care_manager("cm-south", team="south"))
    response = client.get(f"/referrals/{referral['id']}/timeline", headers=sue)
    assert response.status_code == 404
