"""Timers: one running per staff member; a second start is refused naming the running one."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.support import FakeClock, Tokens, care_manager, count_rows, time_entry_body

TIMER = {
    "patient_id": "pat-north-1",
    "program": "CCM",
    "activity": "check-in-call",
    "mode": "virtual",
}


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _start(client: TestClient, headers: dict[str, str], **changes: Any) -> Any:
    return client.post("/timers", json={**TIMER, **changes}, headers=headers)


def test_a_started_timer_is_an_in_progress_entry_from_now(
    client: TestClient, nora: dict[str, str], clock: FakeClock
) -> None:
    response = _start(client, nora)
    assert response.status_code == 201, response.text
    entry = response.json()
    assert entry["status"] == "in-progress"
    assert entry["start"] == clock.now.isoformat().replace("+00:00", "Z")
    assert entry["end"] is None


def test_stopping_a_timer_finishes_its_entry_with_the_elapsed_minutes(
    client: TestClient, nora: dict[str, str], clock: FakeClock
) -> None:
    started = _start(client, nora).json()
    clock.advance(minutes=17, seconds=30)
    response = client.post("/timers/cm-north/stop", json={"interactive": True}, headers=nora)
    assert response.status_code == 200, response.text
    stopped = response.json()
    assert stopped["id"] == started["id"]
    assert stopped["status"] == "finished"
    assert stopped["minutes"] == 17
    assert stopped["interactive"] is True
    assert client.get("/timers/cm-north", headers=nora).status_code == 404


def test_starting_a_second_timer_is_refused_and_names_the_running_one(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    running = _start(client, nora).json()
    response = _start(client, nora, activity="education")
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("/timer-already-running")
    assert running["id"] in problem["detail"]
    assert problem["errors"] == [
        {"field": "staff_id", "reason": f"timer {running['id']} is running"}
    ]
    assert count_rows(database_url, "time_entries") == 1


def test_the_running_timer_can_be_read(client: TestClient, nora: dict[str, str]) -> None:
    running = _start(client, nora).json()
    assert client.get("/timers/cm-north", headers=nora).json()["id"] == running["id"]


def test_a_timer_stopped_within_its_first_minute_is_refused_and_keeps_running(
    client: TestClient, nora: dict[str, str], clock: FakeClock
) -> None:
    running = _start(client, nora).json()
    clock.advance(seconds=20)
    response = client.post("/timers/cm-north/stop", headers=nora)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["end"]
    assert client.get("/timers/cm-north", headers=nora).json()["id"] == running["id"]


def test_a_manual_entry_overlapping_the_running_timer_conflicts_naming_its_entry(
    client: TestClient, nora: dict[str, str], clock: FakeClock
) -> None:
    clock.advance(minutes=-30)
    running = _start(client, nora).json()
    clock.advance(minutes=30)
    response = client.post(
        "/time-entries",
        json=time_entry_body(start="2026-10-15T14:40:00Z", end="2026-10-15T14:50:00Z"),
        headers=nora,
    )
    assert response.status_code == 409, response.text
    assert response.json()["type"].endswith("/time-overlap")
    assert [e["field"] for e in response.json()["errors"]] == ["start"]
    assert running["id"] in response.json()["errors"][0]["reason"]


def test_deleting_the_running_timers_entry_discards_the_timer(
    client: TestClient, nora: dict[str, str]
) -> None:
    running = _start(client, nora).json()
    assert client.delete(f"/time-entries/{running['id']}", headers=nora).status_code == 200
    assert _start(client, nora).status_code == 201


def test_a_care_manager_cannot_start_a_timer_for_someone_else(
    client: TestClient, nora: dict[str, str]
) -> None:
    assert _start(client, nora, staff_id="cm-north-2").status_code == 403
