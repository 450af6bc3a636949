"""POST /observations: device hubs send readings, one Observation or an NDJSON batch.

Fixtures: fixtures/observations/api (patients from fixtures/api/caseload.yaml: Patient/ehr-1001
is pat-north-1 of team north, Patient/ehr-2001 is team south's).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fhirbridge.api.auth import Role, issue_api_key
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.persistence.scratch import Backend
from tests.api.support import Tokens, billing, care_manager, count_rows
from tests.sessions import session_factory

HERE = Path(__file__).resolve().parents[2] / "fixtures" / "observations" / "api"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    value: Backend = request.param
    return value


def _one() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HERE / "one-reading.json").read_text())
    return data


def _batch() -> bytes:
    return (HERE / "hub-batch.ndjson").read_bytes()


def _hub_key(app: FastAPI, role: Role = Role.SUPERVISOR, team: str | None = "north") -> str:
    with unit_of_work(session_factory(app.state.engine)) as session:
        return issue_api_key(store=Store(session), key_id="hub-1", role=role, team=team)


def _hub(app: FastAPI) -> dict[str, str]:
    return {"X-API-Key": _hub_key(app)}


def test_a_device_hub_posts_one_reading(app: FastAPI, client: TestClient) -> None:
    response = client.post("/observations", json=_one(), headers={**_hub(app), **FHIR_JSON})

    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["refused"]) == (1, 0)
    assert body["lines"][0]["status"] == "created"


def test_the_stored_reading_is_the_posted_one(
    app: FastAPI, client: TestClient, database_url: str
) -> None:
    client.post("/observations", json=_one(), headers={**_hub(app), **FHIR_JSON})

    with unit_of_work(session_factory(app.state.engine), read_only=True) as session:
        (reading,) = Store(session).device_readings.for_patient("pat-north-1")
    assert (reading.code, reading.value, reading.second_value) == ("85354-9", 130, 85)
    assert (reading.device, reading.manual, reading.unit) == ("Device/cuff-1", False, "mm[Hg]")


def test_posting_the_same_reading_again_stores_it_once(
    app: FastAPI, client: TestClient, database_url: str
) -> None:
    headers = {**_hub(app), **FHIR_JSON}
    client.post("/observations", json=_one(), headers=headers)

    again = client.post("/observations", json=_one(), headers=headers)

    assert again.json()["lines"][0]["status"] == "unchanged"
    assert count_rows(database_url, "device_readings") == 1


def test_a_corrected_reading_updates_the_stored_one(
    app: FastAPI, client: TestClient, database_url: str
) -> None:
    headers = {**_hub(app), **FHIR_JSON}
    client.post("/observations", json=_one(), headers=headers)
    corrected = _one()
    corrected["component"][0]["valueQuantity"]["value"] = 141

    response = client.post("/observations", json=corrected, headers=headers)

    assert response.json()["lines"][0]["status"] == "updated"
    assert count_rows(database_url, "device_readings") == 1


def test_a_posted_reading_without_identifier_is_a_422_naming_identifier(
    app: FastAPI, client: TestClient
) -> None:
    body = _one()
    del body["identifier"]
    body["id"] = "abc"  # a resource id names nothing without its server

    response = client.post("/observations", json=body, headers={**_hub(app), **FHIR_JSON})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["identifier"]


def test_a_single_reading_for_an_unknown_patient_is_a_422_naming_subject(
    app: FastAPI, client: TestClient
) -> None:
    body = _one()
    body["subject"] = {"reference": "Patient/nobody"}

    response = client.post("/observations", json=body, headers={**_hub(app), **FHIR_JSON})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["subject"]


def test_a_batch_reports_every_line_and_stores_the_good_ones(
    app: FastAPI, client: TestClient, database_url: str
) -> None:
    response = client.post("/observations", content=_batch(), headers={**_hub(app), **NDJSON})

    assert response.status_code == 200
    lines = {line["line"]: line for line in response.json()["lines"]}
    assert {n: line["status"] for n, line in lines.items()} == {
        1: "created",
        2: "created",
        3: "refused",
        4: "refused",
        5: "refused",
        6: "refused",
        8: "created",
    }
    assert lines[3]["field"] == "(line)"
    assert lines[6]["field"] == "identifier"
    assert count_rows(database_url, "device_readings") == 3


def test_another_teams_patient_is_refused_exactly_as_an_unknown_one(
    app: FastAPI, client: TestClient
) -> None:
    response = client.post("/observations", content=_batch(), headers={**_hub(app), **NDJSON})

    lines = {line["line"]: line for line in response.json()["lines"]}
    unknown, other_team = lines[4], lines[5]
    assert other_team["field"] == unknown["field"] == "subject"
    assert other_team["reason"].replace("ehr-2001", "X") == unknown["reason"].replace(
        "no-such-patient", "X"
    )


def test_an_admin_hub_may_post_for_every_team(
    app: FastAPI, client: TestClient, database_url: str
) -> None:
    key = _hub_key(app, role=Role.ADMIN, team=None)

    response = client.post("/observations", content=_batch(), headers={"X-API-Key": key, **NDJSON})

    assert response.json()["created"] == 4  # line 5 (team south) too


def test_a_care_manager_may_post_readings(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    headers = {**tokens.headers(**care_manager()), **FHIR_JSON}

    response = client.post("/observations", json=_one(), headers=headers)

    assert response.status_code == 200


def test_billing_may_not_post_readings(client: TestClient, tokens: Tokens) -> None:
    response = client.post(
        "/observations", json=_one(), headers={**tokens.headers(**billing()), **FHIR_JSON}
    )

    assert response.status_code == 403


def test_posting_without_credentials_is_refused(client: TestClient) -> None:
    assert client.post("/observations", json=_one(), headers=FHIR_JSON).status_code == 401


def test_an_unknown_media_type_is_a_415(app: FastAPI, client: TestClient) -> None:
    response = client.post(
        "/observations", content=b"x", headers={**_hub(app), "Content-Type": "text/csv"}
    )

    assert response.status_code == 415


def test_an_empty_batch_is_a_422(app: FastAPI, client: TestClient) -> None:
    response = client.post("/observations", content=b"\n\n", headers={**_hub(app), **NDJSON})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body"]


def test_hubs_posting_the_same_batch_at_once_store_each_reading_once(
    app: FastAPI, client: TestClient, database_url: str
) -> None:
    headers = {**_hub(app), **NDJSON}
    body = _batch()
    senders = 4
    barrier = threading.Barrier(senders)
    statuses: list[int] = []
    failures: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            statuses.append(client.post("/observations", content=body, headers=headers).status_code)
        except BaseException as exc:  # reported below, not swallowed
            failures.append(exc)

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert all(s in (200, 503) for s in statuses)
    assert 200 in statuses
    assert count_rows(database_url, "device_readings") == 3
