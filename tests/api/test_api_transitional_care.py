"""TCM through the API: a patient's periods with deadlines, tasks and verdicts; contacts,
unsuccessful attempts and the visit; complexity. Team access as everywhere (another team's
period is a 404 like a missing one), problems name the field. Runs on SQLite and PostgreSQL.

The period is opened the way a pull does it: the discharge fixture (Friday 2026-03-06, home)
through the service, on the API's database."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from fhirbridge.billing.loader import load_rule_year
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.mapping.discharge import load_discharge_rules
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.persistence.scratch import Backend
from fhirbridge.services import transitional_care as tcm
from tests.api.support import FakeClock, Tokens, billing, care_manager, supervisor
from tests.sessions import session_factory, shipped_mappings

DISCHARGE = PROJECT_ROOT / "fixtures/transitional_care/discharge-home.json"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


@pytest.fixture
def period_id(database_url: str, clock: FakeClock) -> str:
    engine = make_engine(database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            opening = tcm.receive_discharge(
                store=Store(session),
                resource=json.loads(DISCHARGE.read_text()),
                rules=load_discharge_rules(
                    PROJECT_ROOT / "mappings", shipped_mappings().terminology
                ),
                policy=tcm.tcm_policy(load_rule_year(2026), tz=ZoneInfo("UTC")),
                now=clock(),
            )
    finally:
        engine.dispose()
    assert opening.period is not None
    return opening.period.id


def _contact(client: TestClient, headers: dict[str, str], period_id: str, **body: Any) -> Any:
    return client.post(f"/tcm-periods/{period_id}/contacts", json=body, headers=headers)


def test_a_patients_periods_show_deadlines_tasks_and_why_nothing_is_earned_yet(
    client: TestClient, nora: dict[str, str], period_id: str
) -> None:
    response = client.get("/patients/pat-north-1/tcm-periods", headers=nora)

    assert response.status_code == 200
    (period,) = response.json()
    assert period["id"] == period_id
    assert period["discharge"] == "Encounter/disch-1001"
    assert (period["discharged_on"], period["last_day"]) == ("2026-03-06", "2026-04-04")
    assert period["contact_due"] == "2026-03-10"
    assert period["contact_task"]["due_end"] == "2026-03-10"
    assert period["visit_task"]["due_end"] == "2026-03-13"
    assert period["codes"] == [
        {
            "code": "99496",
            "earned": False,
            "explanation": "complexity not recorded: the care manager records moderate or high",
        },
        {
            "code": "99495",
            "earned": False,
            "explanation": "complexity not recorded: the care manager records moderate or high",
        },
    ]


def test_contact_complexity_and_visit_earn_99496_and_complete_the_tasks(
    client: TestClient, nora: dict[str, str], tokens: Tokens, period_id: str
) -> None:
    called = _contact(
        client, nora, period_id, kind="interactive-contact", occurred_at="2026-03-09T15:00:00Z"
    )
    assert called.status_code == 201, called.text
    assert called.json()["occurred_on"] == "2026-03-09"
    sam = tokens.headers(**supervisor())
    high = client.put(
        f"/tcm-periods/{period_id}/complexity", json={"complexity": "high"}, headers=sam
    )
    assert high.status_code == 200, high.text
    seen = _contact(
        client,
        sam,
        period_id,
        kind="face-to-face-visit",
        occurred_at="2026-03-13T10:00:00Z",
        mode="in-person",
    )
    assert seen.status_code == 201, seen.text

    period = client.get(f"/tcm-periods/{period_id}", headers=nora).json()

    assert period["codes"][0] == {
        "code": "99496",
        "earned": True,
        "explanation": "visit on day 7, within 7; contact on business day 1 (2026-03-09); "
        "due by business day 2, 2026-03-10",
    }
    assert period["date_of_service"] == "2026-03-13"
    assert period["contact_task"]["status"] == "completed"
    assert period["visit_task"]["status"] == "completed"


def test_moderate_complexity_moves_the_visit_task_to_day_14(
    client: TestClient, nora: dict[str, str], period_id: str
) -> None:
    response = client.put(
        f"/tcm-periods/{period_id}/complexity", json={"complexity": "moderate"}, headers=nora
    )

    assert response.status_code == 200
    assert response.json()["visit_task"]["due_end"] == "2026-03-20"
    assert response.json()["complexity_recorded_by"] == "cm-north"


def test_a_contact_on_business_day_3_is_recorded_and_explained_as_late(
    client: TestClient, nora: dict[str, str], period_id: str
) -> None:
    _contact(
        client, nora, period_id, kind="interactive-contact", occurred_at="2026-03-11T15:00:00Z"
    )

    period = client.get(f"/tcm-periods/{period_id}", headers=nora).json()

    assert period["contact_met"] is False
    assert period["contact_explanation"] == (
        "contact on business day 3 (2026-03-11); due by business day 2, 2026-03-10"
    )


def test_a_contact_before_the_discharge_is_a_422_naming_occurred_at(
    client: TestClient, nora: dict[str, str], period_id: str
) -> None:
    response = _contact(
        client, nora, period_id, kind="interactive-contact", occurred_at="2026-03-05T15:00:00Z"
    )

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["occurred_at"]


def test_an_unknown_contact_kind_is_a_422_naming_kind(
    client: TestClient, nora: dict[str, str], period_id: str
) -> None:
    response = _contact(
        client, nora, period_id, kind="telepathy", occurred_at="2026-03-09T15:00:00Z"
    )

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["kind"]


def test_another_teams_period_is_not_found(
    client: TestClient, tokens: Tokens, period_id: str
) -> None:
    sue = tokens.headers(**care_manager("cm-south", "south"))

    assert client.get(f"/tcm-periods/{period_id}", headers=sue).status_code == 404
    assert client.get("/patients/pat-north-1/tcm-periods", headers=sue).status_code == 404
    response = _contact(
        client, sue, period_id, kind="interactive-contact", occurred_at="2026-03-09T15:00:00Z"
    )
    assert response.status_code == 404
    assert response.json()["detail"] == f"no TCM period {period_id!r}"


def test_a_care_manager_records_contacts_only_as_themselves(
    client: TestClient, nora: dict[str, str], period_id: str
) -> None:
    response = _contact(
        client,
        nora,
        period_id,
        kind="interactive-contact",
        occurred_at="2026-03-09T15:00:00Z",
        staff_id="cm-north-2",
    )

    assert response.status_code == 403


def test_billing_staff_cannot_read_periods(
    client: TestClient, tokens: Tokens, period_id: str
) -> None:
    response = client.get(f"/tcm-periods/{period_id}", headers=tokens.headers(**billing()))

    assert response.status_code == 403
