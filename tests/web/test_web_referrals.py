"""Referrals from the patient page: sent through ``POST /referrals``'s rules, refusals next to
the field, and the referral's page following its fulfilment Task until it closes."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from fhirbridge.config import Settings
from fhirbridge.domain import ReferralStatus, TaskStatus
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.persistence.scratch import Backend
from tests.sessions import session_factory
from tests.web.conftest import NORA, SUE, Browser, field_error, sign_in

FOOD = {
    "kind": "social-need",
    "service_system": "snomed",
    "service_code": "710925007",
    "service_display": "Provision of food",
    "categories": "food-insecurity",
    "reason": "Screened positive for food insecurity",
    "priority": "routine",
    "performer_reference": "Organization/cbo-foodbank-7",
    "performer_display": "Eastside Community Food Bank",
    "consent_id": "con-north-1-ccm",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def nora(client: TestClient, settings: Settings) -> Browser:
    return sign_in(client, settings, NORA)


def _send(nora: Browser, **changes: str) -> str:
    sent = nora.post("/app/patients/pat-north-1/referrals", {**FOOD, **changes})
    assert sent.status_code == 303, sent.text
    return str(sent.headers["location"])


def test_a_sent_referral_opens_its_page_waiting_for_the_performer(nora: Browser) -> None:
    page = nora.client.get(_send(nora))

    assert page.status_code == 200
    assert '<strong id="task-status">requested</strong>' in page.text
    assert "Eastside Community Food Bank" in page.text
    assert 'hx-trigger="every 10s"' in page.text  # it keeps looking until the loop closes


def test_a_referral_is_listed_on_the_patient_page(nora: Browser) -> None:
    location = _send(nora)

    assert location in nora.client.get("/app/patients/pat-north-1").text


def test_a_specialist_referral_needs_no_category(nora: Browser) -> None:
    location = _send(nora, kind="specialist", categories="")

    assert nora.client.get(location).status_code == 200


def test_a_social_need_without_a_category_is_refused_next_to_the_categories(
    nora: Browser,
) -> None:
    refused = nora.client.post(
        "/app/patients/pat-north-1/referrals",
        data={**FOOD, "categories": [], "csrf_token": nora.csrf},
    )

    assert refused.status_code == 422
    assert field_error(refused.text, "categories") == [
        "a social-need referral needs an SDOH category"
    ]
    assert 'value="710925007"' in refused.text


def test_the_page_shows_the_referral_closed_once_the_performer_completes_it(
    nora: Browser, database_url: str
) -> None:
    location = _send(nora)
    referral_id = location.rsplit("/", 1)[1]
    engine = make_engine(database_url)
    try:
        # What the pull does when the food bank completes the Task on the FHIR server.
        with unit_of_work(session_factory(engine)) as session:
            store = Store(session)
            referral = store.referrals.get(referral_id)
            assert referral is not None
            store.referrals.save(
                dataclasses.replace(
                    referral, task_status=TaskStatus.COMPLETED, status=ReferralStatus.COMPLETED
                )
            )
    finally:
        engine.dispose()

    page = nora.client.get(location).text

    assert '<strong id="task-status">completed</strong>' in page
    assert '<strong id="order-status">completed</strong>' in page
    assert "hx-trigger" not in page


def test_another_team_cannot_open_the_referral(
    nora: Browser, client: TestClient, settings: Settings
) -> None:
    location = _send(nora)
    with TestClient(client.app, follow_redirects=False) as other:
        sue = sign_in(other, settings, SUE)

        assert sue.client.get(location).status_code == 404
