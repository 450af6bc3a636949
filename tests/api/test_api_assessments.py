"""Assessments over the API: a response is scored and stored with the follow-ups its
instrument's rules ask for, in one transaction; bad answers are a 422 naming the item; the
history shows totals, bands, response and remission; another team's patient or record is a 404
like a missing one. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.persistence.scratch import Backend
from tests.api.support import Tokens, care_manager, count_rows
from tests.sessions import session_factory

REQUESTS = PROJECT_ROOT / "fixtures" / "assessments" / "requests"
URL = "/patients/pat-north-1/assessments"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _body(name: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((REQUESTS / f"{name}.json").read_text())
    return {**body, **changes}


def _post(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _phq9(total: int, authored: str) -> dict[str, Any]:
    """A PHQ-9 body whose items add up to ``total`` (item 9 left at 0)."""
    codes = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
    items = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5"]
    answers = {"44253-3": codes[0], "44260-8": codes[0]}
    left = total
    for link in items:
        answers[link] = codes[min(3, left)]
        left -= min(3, left)
    assert left == 0
    return {"instrument": "phq-9", "authored": authored, "answers": answers}


def test_phq9_item_9_creates_an_urgent_task_due_the_same_day(
    client: TestClient, nora: dict[str, str]
) -> None:
    recorded = _post(client, nora, _body("phq9-item9"))

    assert (recorded["total"], recorded["band"]) == (3, "minimal")
    assert recorded["follow_ups"]["rules"] == ["self-harm-safety"]
    [task_id] = recorded["follow_ups"]["task_ids"]
    task = client.get(f"/care-tasks/{task_id}", headers=nora).json()
    assert (task["priority"], task["kind"], task["status"]) == ("urgent", "follow-up", "requested")
    assert (task["due_start"], task["due_end"]) == ("2026-10-15", "2026-10-15")
    assert task["patient_id"] == "pat-north-1"


def test_the_safety_task_is_on_the_care_managers_worklist_as_urgent(
    client: TestClient, nora: dict[str, str]
) -> None:
    recorded = _post(client, nora, _body("phq9-item9"))
    [task_id] = recorded["follow_ups"]["task_ids"]

    items = client.get("/worklist", params={"page_size": 100}, headers=nora).json()["items"]

    [item] = [i for i in items if i["record_id"] == task_id]
    assert (item["urgency"], item["priority"], item["patient_id"]) == (
        "urgent",
        "urgent",
        "pat-north-1",
    )


def test_a_response_and_its_follow_ups_are_queued_in_one_transaction(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    recorded = _post(client, nora, _body("phq9-item9"))

    # The response, the total and nine item observations, and the task.
    assert count_rows(database_url, "outbox", resource_type="QuestionnaireResponse") == 1
    assert count_rows(database_url, "outbox", resource_type="Observation") == 10
    assert count_rows(database_url, "outbox", entity_kind="care_task") == 1
    assert len(recorded["follow_ups"]["observation_ids"]) == 10


def test_a_positive_phq2_proposes_a_phq9(client: TestClient, nora: dict[str, str]) -> None:
    recorded = _post(client, nora, _body("phq2-positive"))

    assert (recorded["total"], recorded["band"]) == (3, "positive")
    assert recorded["follow_ups"]["proposed_instruments"] == ["phq-9"]
    [task_id] = recorded["follow_ups"]["task_ids"]
    task = client.get(f"/care-tasks/{task_id}", headers=nora).json()
    assert task["priority"] == "routine"


def test_food_insecurity_runs_the_gravity_chain_to_a_proposed_referral(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    recorded = _post(client, nora, _body("hrsn-food"))

    assert recorded["positive_domains"] == ["food"]
    follow_ups = recorded["follow_ups"]
    [concern_id] = follow_ups["concern_ids"]
    [goal_id] = follow_ups["goal_ids"]
    [referral_id] = follow_ups["referral_ids"]
    with _store(database_url) as store:
        concern = store.health_concerns.require(concern_id)
        [evidence] = [store.screening_observations.require(i) for i in concern.evidence_ids]
        referral = store.referrals.require(referral_id)
    assert (evidence.code.code, evidence.value_code and evidence.value_code.code) == (
        "88122-7",
        "LA6729-3",
    )
    assert [c.code for c in evidence.categories] == ["survey", "food-insecurity"]
    assert concern.code.code == "733423003"
    assert [c.code for c in concern.categories] == ["health-concern", "food-insecurity"]
    goal = client.get(f"/goals/{goal_id}", headers=nora).json()
    assert (goal["lifecycle_status"], goal["description"]) == ("proposed", "Has enough food")
    assert (referral.status.value, referral.task_status.value) == ("draft", "draft")
    assert (referral.goal_id, referral.kind and referral.kind.value) == (goal_id, "social-need")
    assert [c.code for c in referral.categories] == ["food-insecurity"]
    # Proposed, not sent: nothing of the referral is queued until the care manager confirms.
    assert count_rows(database_url, "outbox", entity_kind="referral") == 0
    assert count_rows(database_url, "outbox", resource_type="Condition") == 1


def test_confirming_the_proposed_referral_sends_it(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    recorded = _post(client, nora, _body("hrsn-food"))
    [referral_id] = recorded["follow_ups"]["referral_ids"]

    response = client.patch(
        f"/referrals/{referral_id}", json={"task_status": "requested"}, headers=nora
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert count_rows(database_url, "outbox", entity_kind="referral") == 2


def test_an_unknown_item_a_wrong_answer_and_a_missing_item_are_named(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    body = _body("phq9-item9")
    del body["answers"]["44250-9"]
    body["answers"]["44255-8"] = "LA33-6"
    body["answers"]["12345-6"] = "LA6568-5"

    response = client.post(URL, json=body, headers=nora)

    assert response.status_code == 422
    assert {(e["field"], e["reason"]) for e in response.json()["errors"]} == {
        ("answers.12345-6", "not an item of phq-9"),
        ("answers.44250-9", "required item not answered"),
        (
            "answers.44255-8",
            "'LA33-6' is not an answer (LA6568-5, LA6569-3, LA6570-1, LA6571-9)",
        ),
    }
    assert count_rows(database_url, "assessments") == 0
    assert count_rows(database_url, "outbox") == 0


def test_an_unknown_instrument_is_named(client: TestClient, nora: dict[str, str]) -> None:
    response = client.post(URL, json=_body("phq2-positive", instrument="phq-99"), headers=nora)

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "instrument"


def test_a_response_in_the_future_is_refused(client: TestClient, nora: dict[str, str]) -> None:
    body = _body("phq2-positive", authored="2026-10-16T00:00:00Z")

    response = client.post(URL, json=body, headers=nora)

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "authored", "reason": "in the future"}]


def test_history_shows_response_and_remission_against_the_baseline(
    client: TestClient, nora: dict[str, str]
) -> None:
    for total, day in ((20, "2026-07-01"), (10, "2026-08-01"), (4, "2026-09-01")):
        _post(client, nora, _phq9(total, f"{day}T12:00:00Z"))
    _post(client, nora, _body("phq2-positive"))

    response = client.get(URL, params={"instrument": "phq-9"}, headers=nora)

    assert response.status_code == 200
    points = response.json()["points"]
    assert [
        (p["total"], p["band"], p["baseline"], p["response"], p["remission"]) for p in points
    ] == [
        (20, "severe", True, False, False),
        (10, "moderate", False, True, False),
        (4, "minimal", False, True, True),
    ]
    assert [p["change_percent"] for p in points] == ["0.0", "50.0", "80.0"]


def test_history_of_every_instrument(client: TestClient, nora: dict[str, str]) -> None:
    _post(client, nora, _body("phq2-positive"))
    _post(client, nora, _body("phq9-item9"))

    points = client.get(URL, headers=nora).json()["points"]

    assert [p["instrument"] for p in points] == ["phq-2", "phq-9"]
    assert all(p["baseline"] for p in points)


def test_a_response_is_read_back(client: TestClient, nora: dict[str, str]) -> None:
    recorded = _post(client, nora, _body("phq9-item9"))

    read = client.get(f"/assessments/{recorded['id']}", headers=nora)

    assert read.status_code == 200
    body = read.json()
    assert (body["instrument"], body["total"], body["author_id"]) == ("phq-9", 3, "cm-north")
    assert body["answers"][8] == {
        "link_id": "44260-8",
        "question": "44260-8",
        "answer": "LA6569-3",
        "answer_display": "Several days",
        "score": 1,
    }


def test_another_teams_patient_and_response_are_not_found(
    client: TestClient, nora: dict[str, str], tokens: Tokens
) -> None:
    recorded = _post(client, nora, _body("phq9-item9"))
    sue = tokens.headers(**care_manager("cm-south", "south"))

    posted = client.post(URL, json=_body("phq2-positive"), headers=sue)
    history = client.get(URL, headers=sue)
    read = client.get(f"/assessments/{recorded['id']}", headers=sue)
    missing = client.get("/assessments/no-such-thing", headers=sue)

    assert [r.status_code for r in (posted, history, read, missing)] == [404] * 4
    assert read.json()["detail"].replace(recorded["id"], "X") == missing.json()["detail"].replace(
        "no-such-thing", "X"
    )


def test_routes_need_credentials(client: TestClient) -> None:
    assert client.get(URL).status_code == 401


@contextmanager
def _store(url: str) -> Iterator[Store]:
    """A read-only Store on the test database."""
    engine = make_engine(url)
    try:
        with unit_of_work(session_factory(engine), read_only=True) as session:
            yield Store(session)
    finally:
        engine.dispose()
