"""Manual time entries: recorded once, checked against every rule, edited and deleted with an
audit trail. This suite runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from fhirbridge.persistence.scratch import Backend
from tests.api.support import Tokens, care_manager, count_rows, supervisor, time_entry_body

ENTRIES = "/time-entries"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _post(client: TestClient, headers: dict[str, str], **changes: Any) -> Response:
    response: Response = client.post(ENTRIES, json=time_entry_body(**changes), headers=headers)
    return response


def _rejected(response: Response) -> list[dict[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors: list[dict[str, str]] = response.json()["errors"]
    return errors


def _assert_nothing_written(database_url: str) -> None:
    assert count_rows(database_url, "time_entries") == 0
    assert count_rows(database_url, "outbox") == 0
    assert count_rows(database_url, "audit_events") == 0


# -- recording ---------------------------------------------------------------------------


def test_a_valid_entry_is_recorded_with_minutes_from_its_span(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = _post(client, nora)
    assert response.status_code == 201, response.text
    entry = response.json()
    assert entry["status"] == "finished"
    assert entry["minutes"] == 25
    assert entry["staff_id"] == "cm-north"
    assert entry["staff_role"] == "rn"
    assert entry["enrollment_id"] == "enr-north-1-ccm"


def test_a_recorded_entry_is_queued_for_the_fhir_server_as_an_encounter(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    entry_id = _post(client, nora).json()["id"]
    assert count_rows(database_url, "outbox", local_id=entry_id, resource_type="Encounter") == 1


def test_a_recorded_entry_can_be_read_back(client: TestClient, nora: dict[str, str]) -> None:
    created = _post(client, nora).json()
    assert client.get(f"{ENTRIES}/{created['id']}", headers=nora).json() == created


# -- every rule, one test each -----------------------------------------------------------


def test_an_end_before_the_start_is_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    errors = _rejected(_post(client, nora, end="2026-10-14T13:30:00Z"))
    assert {"field": "end", "reason": "before start"} in errors
    _assert_nothing_written(database_url)


def test_a_zero_length_entry_is_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    errors = _rejected(_post(client, nora, end="2026-10-14T14:00:00Z"))
    assert [e["field"] for e in errors] == ["end"]
    assert errors[0]["reason"].startswith("zero-length")
    _assert_nothing_written(database_url)


def test_negative_minutes_are_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    errors = _rejected(_post(client, nora, minutes=-5))
    assert errors == [{"field": "minutes", "reason": "must be positive"}]
    _assert_nothing_written(database_url)


def test_more_minutes_than_the_span_holds_are_rejected(
    client: TestClient, nora: dict[str, str]
) -> None:
    errors = _rejected(_post(client, nora, minutes=26))
    assert [e["field"] for e in errors] == ["minutes"]


def test_a_start_in_the_future_is_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    errors = _rejected(
        _post(client, nora, start="2026-10-15T16:00:00Z", end="2026-10-15T16:20:00Z")
    )
    assert {"field": "start", "reason": "in the future"} in errors
    _assert_nothing_written(database_url)


def test_an_end_in_the_future_is_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    errors = _rejected(
        _post(client, nora, start="2026-10-15T14:50:00Z", end="2026-10-15T15:10:00Z")
    )
    assert errors == [{"field": "end", "reason": "in the future"}]
    _assert_nothing_written(database_url)


def test_an_entry_before_the_enrollment_began_is_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    errors = _rejected(
        _post(client, nora, start="2025-12-31T10:00:00Z", end="2025-12-31T10:20:00Z")
    )
    assert errors[0]["field"] == "start"
    assert errors[0]["reason"].startswith("outside the enrollment period")
    _assert_nothing_written(database_url)


def test_an_entry_after_the_enrollment_ended_is_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    errors = _rejected(_post(client, nora, program="PCM"))
    assert errors[0]["field"] == "end"
    assert errors[0]["reason"].startswith("outside the enrollment period")
    _assert_nothing_written(database_url)


def test_an_entry_before_the_consent_date_is_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    errors = _rejected(
        _post(client, nora, start="2026-01-20T10:00:00Z", end="2026-01-20T10:20:00Z")
    )
    assert errors == [{"field": "start", "reason": "before consent was given (2026-02-01)"}]
    _assert_nothing_written(database_url)


def test_an_entry_for_a_program_the_patient_is_not_enrolled_in_is_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    errors = _rejected(_post(client, nora, program="RPM"))
    assert errors == [{"field": "program", "reason": "patient is not enrolled in RPM"}]
    _assert_nothing_written(database_url)


def test_an_entry_for_a_cancelled_enrollment_is_rejected(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    errors = _rejected(_post(client, nora, patient_id="pat-north-2", program="BHI"))
    assert [e["field"] for e in errors] == ["program"]
    _assert_nothing_written(database_url)


def test_an_entry_overlapping_another_of_the_same_staff_member_conflicts_naming_it(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    first = _post(client, nora).json()
    response = _post(client, nora, start="2026-10-14T14:20:00Z", end="2026-10-14T14:40:00Z")
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/time-overlap")
    assert first["id"] in problem["detail"]
    assert problem["errors"] == [
        {"field": "start", "reason": f"overlaps time entry {first['id']} of the same staff member"}
    ]
    assert count_rows(database_url, "time_entries") == 1


def test_an_edit_moving_an_entry_onto_another_conflicts_naming_it(
    client: TestClient, nora: dict[str, str]
) -> None:
    first = _post(client, nora).json()
    second = _post(client, nora, start="2026-10-14T10:00:00Z", end="2026-10-14T10:25:00Z").json()
    response = client.patch(
        f"{ENTRIES}/{second['id']}",
        json={"start": "2026-10-14T14:10:00Z", "end": "2026-10-14T14:30:00Z"},
        headers=nora,
    )
    assert response.status_code == 409, response.text
    assert response.json()["errors"] == [
        {"field": "start", "reason": f"overlaps time entry {first['id']} of the same staff member"}
    ]
    assert client.get(f"{ENTRIES}/{second['id']}", headers=nora).json() == second


def test_entries_of_different_staff_members_may_overlap(
    client: TestClient, nora: dict[str, str], tokens: Tokens
) -> None:
    assert _post(client, nora).status_code == 201
    ned = tokens.headers(**care_manager("cm-north-2"))
    assert _post(client, ned).status_code == 201


def test_a_naive_timestamp_is_an_invalid_request(client: TestClient, nora: dict[str, str]) -> None:
    response = _post(client, nora, start="2026-10-14T14:00:00")
    errors = _rejected(response)
    assert response.json()["type"].endswith("/invalid-request")
    assert [e["field"] for e in errors] == ["start"]


# -- idempotency -------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_returns_the_same_entry_and_writes_once(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    headers = {**nora, "Idempotency-Key": "retry-1"}
    first = _post(client, headers)
    again = _post(client, headers)
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert count_rows(database_url, "time_entries") == 1
    assert count_rows(database_url, "outbox") == 1


def test_the_same_idempotency_key_with_a_different_body_is_refused(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    headers = {**nora, "Idempotency-Key": "retry-2"}
    assert _post(client, headers).status_code == 201
    response = _post(client, headers, notes="something else")
    errors = _rejected(response)
    assert response.json()["type"].endswith("/idempotency-key-reused")
    assert [e["field"] for e in errors] == ["Idempotency-Key"]
    assert count_rows(database_url, "time_entries") == 1


def test_a_rejected_request_is_not_remembered_under_its_idempotency_key(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    headers = {**nora, "Idempotency-Key": "retry-3"}
    assert _post(client, headers, program="RPM").status_code == 422
    assert count_rows(database_url, "idempotency_records") == 0


# -- edits and deletions -----------------------------------------------------------------


def test_an_edit_is_checked_again(client: TestClient, nora: dict[str, str]) -> None:
    entry_id = _post(client, nora).json()["id"]
    response = client.patch(
        f"{ENTRIES}/{entry_id}", json={"end": "2026-10-14T13:00:00Z"}, headers=nora
    )
    assert {"field": "end", "reason": "before start"} in _rejected(response)


def test_an_edit_is_recorded_in_the_audit_trail_with_before_and_after(
    client: TestClient, nora: dict[str, str]
) -> None:
    entry_id = _post(client, nora).json()["id"]
    edited = client.patch(
        f"{ENTRIES}/{entry_id}", json={"end": "2026-10-14T14:40:00Z"}, headers=nora
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["minutes"] == 40
    trail = client.get(f"{ENTRIES}/{entry_id}/audit", headers=nora).json()
    assert [event["action"] for event in trail] == ["create", "update"]
    update = trail[1]
    assert update["actor"] == "user:user-cm-north"
    assert update["before"]["minutes"] == 25
    assert update["after"]["minutes"] == 40
    assert update["after"]["end"] == "2026-10-14T14:40:00+00:00"


def test_a_deleted_entry_is_kept_as_entered_in_error(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    entry_id = _post(client, nora).json()["id"]
    response = client.delete(f"{ENTRIES}/{entry_id}", headers=nora)
    assert response.status_code == 200
    assert response.json()["status"] == "entered-in-error"
    assert client.get(f"{ENTRIES}/{entry_id}", headers=nora).json()["status"] == (
        "entered-in-error"
    )
    assert count_rows(database_url, "time_entries") == 1


def test_a_deletion_is_recorded_in_the_audit_trail(
    client: TestClient, nora: dict[str, str]
) -> None:
    entry_id = _post(client, nora).json()["id"]
    client.delete(f"{ENTRIES}/{entry_id}", headers=nora)
    trail = client.get(f"{ENTRIES}/{entry_id}/audit", headers=nora).json()
    assert [event["action"] for event in trail] == ["create", "delete"]
    assert trail[1]["before"]["status"] == "finished"
    assert trail[1]["after"]["status"] == "entered-in-error"


def test_a_deleted_entry_no_longer_blocks_an_overlapping_one(
    client: TestClient, nora: dict[str, str]
) -> None:
    entry_id = _post(client, nora).json()["id"]
    client.delete(f"{ENTRIES}/{entry_id}", headers=nora)
    assert _post(client, nora).status_code == 201


def test_a_deleted_entry_cannot_be_edited(client: TestClient, nora: dict[str, str]) -> None:
    entry_id = _post(client, nora).json()["id"]
    client.delete(f"{ENTRIES}/{entry_id}", headers=nora)
    response = client.patch(f"{ENTRIES}/{entry_id}", json={"notes": "late"}, headers=nora)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/record-locked")


def test_a_supervisor_records_time_for_a_member_of_the_team(
    client: TestClient, tokens: Tokens
) -> None:
    response = _post(client, tokens.headers(**supervisor()), staff_id="cm-north-2")
    assert response.status_code == 201
    assert response.json()["staff_id"] == "cm-north-2"


def test_an_admin_cannot_record_another_teams_member_on_a_patient(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    admin = {"sub": "admin-1", "roles": ["admin"], "staff_id": "sup-north"}
    response = _post(client, tokens.headers(**admin), staff_id="cm-south")
    assert response.status_code == 422
    assert {"field": "staff_id", "reason": "no such care team member"} in _rejected(response)
    _assert_nothing_written(database_url)
