"""Requests that race: the rules on a staff member's time and the replay of an Idempotency-Key
hold when the requests arrive at the same moment, not only one after another.

The app runs in a real server (uvicorn on 127.0.0.1, a port of its own) and every request has
a client and a thread of its own, held at a barrier until all are ready. This suite runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhirbridge.persistence.scratch import Backend
from tests.api.live_server import Send, at_once, served
from tests.api.support import FakeClock, Tokens, billing, care_manager, count_rows, time_entry_body

ENTRIES = "/time-entries"
TIMER = {
    "patient_id": "pat-north-1",
    "program": "CCM",
    "activity": "check-in-call",
    "mode": "virtual",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The app served over HTTP: a TestClient is not meant for concurrent use."""
    with served(app) as url:
        yield url


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _post_entry(headers: dict[str, str], **changes: Any) -> Send:
    return lambda client: client.post(ENTRIES, json=time_entry_body(**changes), headers=headers)


def _patch_entry(headers: dict[str, str], entry_id: str, **changes: Any) -> Send:
    return lambda client: client.patch(f"{ENTRIES}/{entry_id}", json=changes, headers=headers)


def _start_timer(headers: dict[str, str]) -> Send:
    return lambda client: client.post("/timers", json=TIMER, headers=headers)


def _stop_timer(headers: dict[str, str]) -> Send:
    return lambda client: client.post("/timers/cm-north/stop", headers=headers)


def _slot(day: int, hour: int, minute: int = 0) -> dict[str, str]:
    """Twenty-five minutes on 2026-10-``day`` from ``hour``:``minute`` UTC."""
    return {
        "start": f"2026-10-{day:02d}T{hour:02d}:{minute:02d}:00Z",
        "end": f"2026-10-{day:02d}T{hour:02d}:{minute + 25:02d}:00Z",
    }


def _the_one_accepted(responses: list[httpx.Response]) -> httpx.Response:
    accepted = [r for r in responses if r.status_code in (200, 201)]
    assert len(accepted) == 1, [r.status_code for r in responses]
    return accepted[0]


def _assert_overlap_names(response: httpx.Response, holder_id: str) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/time-overlap")
    assert problem["errors"] == [
        {"field": "start", "reason": f"overlaps time entry {holder_id} of the same staff member"}
    ]


def test_overlapping_entries_posted_at_once_are_accepted_once(
    base_url: str, nora: dict[str, str], database_url: str
) -> None:
    responses = at_once(base_url, [_post_entry(nora, **_slot(14, 14, i)) for i in range(8)])
    winner = _the_one_accepted(responses)
    assert winner.status_code == 201
    for loser in responses:
        if loser is not winner:
            _assert_overlap_names(loser, winner.json()["id"])
    assert count_rows(database_url, "time_entries") == 1


def test_an_edit_and_a_new_entry_racing_into_one_slot_are_accepted_once(
    base_url: str, nora: dict[str, str], database_url: str
) -> None:
    # Four pairs at once, each an edit moving an entry from the 13th into a slot on the 14th
    # and a new entry for that same slot.
    moved = [
        httpx.post(
            base_url + ENTRIES, json=time_entry_body(**_slot(13, 8 + i)), headers=nora
        ).json()["id"]
        for i in range(4)
    ]
    sends: list[Send] = []
    for i, entry_id in enumerate(moved):
        sends += [
            _patch_entry(nora, entry_id, **_slot(14, 8 + i)),
            _post_entry(nora, **_slot(14, 8 + i, 5)),
        ]
    responses = at_once(base_url, sends)
    for i in range(4):
        edit, new = responses[2 * i], responses[2 * i + 1]
        winner = _the_one_accepted([edit, new])
        loser = new if winner is edit else edit
        _assert_overlap_names(loser, winner.json()["id"])
    new_entries_accepted = sum(1 for r in responses[1::2] if r.status_code == 201)
    assert count_rows(database_url, "time_entries") == len(moved) + new_entries_accepted


def test_timers_started_at_once_leave_one_running_and_the_others_name_it(
    base_url: str, nora: dict[str, str], database_url: str
) -> None:
    responses = at_once(base_url, [_start_timer(nora) for _ in range(8)])
    winner = _the_one_accepted(responses)
    running_id = winner.json()["id"]
    for loser in responses:
        if loser is not winner:
            assert loser.status_code == 409, loser.text
            assert loser.json()["type"].endswith("/timer-already-running")
            assert loser.json()["errors"] == [
                {"field": "staff_id", "reason": f"timer {running_id} is running"}
            ]
    assert count_rows(database_url, "time_entries") == 1


def test_a_timer_stopped_at_once_from_several_places_is_stopped_once(
    base_url: str, nora: dict[str, str], clock: FakeClock
) -> None:
    running = httpx.post(base_url + "/timers", json=TIMER, headers=nora).json()
    clock.advance(minutes=20)
    responses = at_once(base_url, [_stop_timer(nora) for _ in range(4)])
    winner = _the_one_accepted(responses)
    assert winner.json()["id"] == running["id"]
    assert sorted(r.status_code for r in responses) == [200, 404, 404, 404]
    trail = httpx.get(f"{base_url}{ENTRIES}/{running['id']}/audit", headers=nora).json()
    assert [event["action"] for event in trail] == ["start-timer", "stop-timer"]


def test_retries_sent_at_once_with_one_idempotency_key_all_get_the_first_answer(
    base_url: str, nora: dict[str, str], database_url: str
) -> None:
    headers = {**nora, "Idempotency-Key": "storm-1"}
    responses = at_once(base_url, [_post_entry(headers) for _ in range(20)])
    firsts = [r for r in responses if "idempotent-replayed" not in r.headers]
    assert len(firsts) == 1, [(r.status_code, r.json().get("type")) for r in firsts]
    first = firsts[0]
    assert first.status_code == 201, first.text
    for response in responses:
        assert (response.status_code, response.json()) == (201, first.json())
    assert count_rows(database_url, "time_entries") == 1
    assert count_rows(database_url, "idempotency_records") == 1


def test_minutes_of_overlapping_entries_posted_at_once_are_counted_once(
    base_url: str, nora: dict[str, str], tokens: Tokens
) -> None:
    at_once(base_url, [_post_entry(nora, **_slot(14, 14, i)) for i in range(8)])
    report = httpx.get(
        base_url + "/reports/minutes",
        params={"month": "2026-10", "team": "north"},
        headers=tokens.headers(**billing()),
    )
    assert report.status_code == 200, report.text
    assert report.json() == [
        {"patient_id": "pat-north-1", "program": "CCM", "minutes": 25, "entries": 1}
    ]
