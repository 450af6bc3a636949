"""Goals and the health concerns they address (the Gravity chain Condition -> Goal): the goal a
positive screening proposes names the concern it found; a goal made by hand addresses none; the
care plan service refuses a concern that is not the goal's patient's (another team's patient's
included), naming ``concern_ids``. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.persistence.scratch import Backend
from fhirbridge.services import careplan
from fhirbridge.services.errors import FieldError, Rejected
from tests.api.support import Tokens, care_manager
from tests.sessions import session_factory

HRSN_FOOD = json.loads((PROJECT_ROOT / "fixtures/assessments/requests/hrsn-food.json").read_text())


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


@contextmanager
def _store(url: str) -> Iterator[Store]:
    engine = make_engine(url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            yield Store(session)
    finally:
        engine.dispose()


def _screen_positive(client: TestClient, headers: dict[str, str]) -> tuple[str, str]:
    response = client.post("/patients/pat-north-1/assessments", json=HRSN_FOOD, headers=headers)
    assert response.status_code == 201, response.text
    follow_ups = response.json()["follow_ups"]
    [concern_id], [goal_id] = follow_ups["concern_ids"], follow_ups["goal_ids"]
    return concern_id, goal_id


def test_the_goal_a_screening_proposes_names_the_concern_it_found(
    client: TestClient, nora: dict[str, str]
) -> None:
    concern_id, goal_id = _screen_positive(client, nora)

    goal = client.get(f"/goals/{goal_id}", headers=nora).json()

    assert goal["concern_ids"] == [concern_id]


def test_a_goal_made_by_hand_addresses_no_concern(client: TestClient, nora: dict[str, str]) -> None:
    body = {"patient_id": "pat-north-1", "description": "Walk daily"}

    goal = client.post("/goals", json=body, headers=nora).json()

    assert goal["concern_ids"] == []


def test_a_goal_may_address_its_own_patients_concern(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    concern_id, _ = _screen_positive(client, nora)
    body = {"patient_id": "pat-north-1", "description": "Food bank weekly"}

    made = client.post("/goals", json={**body, "concern_ids": [concern_id]}, headers=nora)

    assert made.status_code == 201, made.text
    with _store(database_url) as store:
        assert store.goals.require(made.json()["id"]).concern_ids == [concern_id]


def test_another_patients_concern_is_refused_naming_concern_ids(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    concern_id, _ = _screen_positive(client, nora)
    body = {"patient_id": "pat-north-2", "description": "Food bank weekly"}

    refused = client.post("/goals", json={**body, "concern_ids": [concern_id]}, headers=nora)

    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["concern_ids"]
    with _store(database_url) as store:
        assert store.goals.list_for_patient("pat-north-2") == []


def test_another_teams_patients_concern_is_refused_like_an_unknown_one(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    concern_id, _ = _screen_positive(client, nora)
    new = careplan.NewGoal("pat-south-1", "Food bank weekly", concern_ids=(concern_id,))
    unknown = careplan.NewGoal("pat-south-1", "Food bank weekly", concern_ids=("no-such",))

    with _store(database_url) as store, pytest.raises(Rejected) as foreign:
        careplan.create_goal(store=store, new=new)
    with _store(database_url) as store, pytest.raises(Rejected) as missing:
        careplan.create_goal(store=store, new=unknown)

    def shape(errors: list[FieldError], named: str) -> list[tuple[str, str]]:
        return [(e.field, e.reason.replace(named, "<id>")) for e in errors]

    assert shape(foreign.value.errors, concern_id) == shape(missing.value.errors, "no-such")


def test_an_unknown_concern_is_refused(client: TestClient, nora: dict[str, str]) -> None:
    body = {"patient_id": "pat-north-1", "description": "Food bank weekly"}

    refused = client.post("/goals", json={**body, "concern_ids": ["no-such"]}, headers=nora)

    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["concern_ids"]
