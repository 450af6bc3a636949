"""A patient's care team over HTTP (``/patients/{id}/care-team``), on SQLite and PostgreSQL:
proposed from the enrollments until stored, replaced whole by PUT, queued for the FHIR server,
and refused with the field named when a participant is wrong. Caseload: fixtures/api."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhirbridge.persistence.scratch import Backend
from tests.api.support import Tokens, billing, care_manager, count_rows

URL = "/patients/pat-north-1/care-team"
NORTH = care_manager()
SOUTH = care_manager(staff_id="cm-south", team="south")

TEAM = {
    "name": "North CoCM team",
    "participants": [
        {"role": "billing-practitioner", "member_id": "sup-north"},
        {"role": "care-manager", "member_id": "cm-north", "start": "2026-02-01"},
        {"role": "bh-care-manager", "member_id": "cm-north-2"},
        {"role": "psychiatric-consultant", "external": "Practitioner/psych-9"},
    ],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


def _put(client: TestClient, tokens: Tokens, body: dict[str, Any], **who: Any) -> Any:
    return client.put(URL, json=body, headers=tokens.headers(**(who or NORTH)))


def test_without_a_stored_team_one_is_proposed_from_the_enrollments(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.get(URL, headers=tokens.headers(**NORTH))

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"]) == (None, "proposed")
    assert {(p["role"], p["member_id"]) for p in body["participants"]} >= {
        ("billing-practitioner", "sup-north")
    }


def test_a_team_put_reads_back_as_sent(client: TestClient, tokens: Tokens) -> None:
    put = _put(client, tokens, TEAM)

    got = client.get(URL, headers=tokens.headers(**NORTH))
    assert put.status_code == 200, put.text
    body = got.json()
    assert body["id"] is not None
    assert body["status"] == "active"
    assert [(p["role"], p["member_id"], p["external"]) for p in body["participants"]] == [
        ("billing-practitioner", "sup-north", None),
        ("care-manager", "cm-north", None),
        ("bh-care-manager", "cm-north-2", None),
        ("psychiatric-consultant", None, "Practitioner/psych-9"),
    ]
    assert body["participants"][1]["start"] == "2026-02-01"


def test_saving_a_team_queues_it_for_the_fhir_server_once(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    _put(client, tokens, TEAM)
    _put(client, tokens, TEAM)  # unchanged: nothing more to push

    assert count_rows(database_url, "outbox", resource_type="CareTeam") == 1


def test_a_stored_team_lists_the_enrollment_people_it_lacks(
    client: TestClient, tokens: Tokens
) -> None:
    body = _put(client, tokens, {"participants": []}).json()

    assert ("billing-practitioner", "sup-north") in {
        (p["role"], p["member_id"]) for p in body["missing_from_enrollments"]
    }


def test_a_member_of_another_team_is_refused_naming_the_field(
    client: TestClient, tokens: Tokens
) -> None:
    response = _put(
        client, tokens, {"participants": [{"role": "care-manager", "member_id": "cm-south"}]}
    )

    assert response.status_code == 422
    assert "participants[0].member_id" in response.text


def test_an_external_reference_of_another_type_is_refused(
    client: TestClient, tokens: Tokens
) -> None:
    response = _put(
        client, tokens, {"participants": [{"role": "care-manager", "external": "Device/x"}]}
    )

    assert response.status_code == 422
    assert "participants[0].external" in response.text


def test_a_participant_naming_both_a_member_and_an_external_is_refused(
    client: TestClient, tokens: Tokens
) -> None:
    both = {"role": "care-manager", "member_id": "cm-north", "external": "Practitioner/x"}

    response = _put(client, tokens, {"participants": [both]})

    assert response.status_code == 422
    assert "participants[0]" in response.text


def test_another_teams_patient_answers_404_like_a_missing_one(
    client: TestClient, tokens: Tokens
) -> None:
    other = client.get(URL, headers=tokens.headers(**SOUTH))
    missing = client.get("/patients/nobody/care-team", headers=tokens.headers(**SOUTH))
    put = _put(client, tokens, TEAM, **SOUTH)

    assert (other.status_code, missing.status_code, put.status_code) == (404, 404, 404)
    assert other.json()["detail"].replace("pat-north-1", "X") == missing.json()["detail"].replace(
        "nobody", "X"
    )


def test_billing_credentials_may_not_read_a_care_team(client: TestClient, tokens: Tokens) -> None:
    assert client.get(URL, headers=tokens.headers(**billing())).status_code == 403
