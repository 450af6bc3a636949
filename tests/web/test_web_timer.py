"""The timer from the patient page: one click starts it, every page's header shows it (it is
server state), stopping it opens its entry's form filled in, and refusals show next to the
field the problem document names. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fhirbridge.config import Settings
from fhirbridge.persistence.scratch import Backend
from tests.api.support import FakeClock, Tokens, care_manager, time_entry_body
from tests.web.conftest import NORA, Browser, field_error, sign_in

START = {
    "patient_id": "pat-north-1",
    "program": "CCM",
    "activity": "check-in-call",
    "mode": "virtual",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def nora(client: TestClient, settings: Settings) -> Browser:
    return sign_in(client, settings, NORA)


def test_one_click_on_the_patient_page_starts_the_timer(nora: Browser) -> None:
    response = nora.post("/app/timer/start", START)

    assert response.status_code == 303
    assert response.headers["location"] == "/app/patients/pat-north-1"
    assert 'id="running-timer"' in nora.client.get("/app/patients/pat-north-1").text


def test_the_running_timer_shows_in_the_header_of_every_page(nora: Browser) -> None:
    nora.post("/app/timer/start", START)

    for path in ("/app/worklist", "/app/thresholds", "/app/patients/pat-north-2"):
        page = nora.client.get(path)
        assert page.status_code == 200, path
        assert 'id="running-timer"' in page.text, path
        assert "Timer running for" in page.text


def test_the_timer_survives_a_second_tab(
    nora: Browser, client: TestClient, settings: Settings
) -> None:
    nora.post("/app/timer/start", START)
    with TestClient(client.app) as second_tab:
        sign_in(second_tab, settings, NORA)

        assert 'id="running-timer"' in second_tab.get("/app/worklist").text


def test_stopping_the_timer_opens_its_entry_form_filled_in(nora: Browser, clock: FakeClock) -> None:
    nora.post("/app/timer/start", START)
    clock.advance(minutes=12)

    stopped = nora.post("/app/timer/stop")
    assert stopped.status_code == 303
    form = nora.client.get(stopped.headers["location"])

    assert form.status_code == 200
    assert "Timer stopped: 12 minutes" in form.text
    assert 'name="start" value="2026-10-15T15:00"' in form.text
    assert 'name="end" value="2026-10-15T15:12"' in form.text
    assert 'value="12"' in form.text
    assert 'id="running-timer"' not in form.text


def test_the_stopped_entry_form_saves_through_the_time_entry_rules(
    nora: Browser, clock: FakeClock
) -> None:
    nora.post("/app/timer/start", START)
    clock.advance(minutes=12)
    entry_page = nora.post("/app/timer/stop").headers["location"].split("?")[0]

    saved = nora.post(
        entry_page,
        {
            "activity": "education",
            "mode": "virtual",
            "start": "2026-10-15T15:00",
            "end": "2026-10-15T15:12",
            "minutes": "10",
            "interactive": "true",
            "notes": "Discussed the inhaler",
        },
    )

    assert saved.status_code == 303
    page = nora.client.get(entry_page).text
    assert 'value="10"' in page
    assert "Discussed the inhaler" in page
    assert "update by user:nora" in page


def test_a_second_start_is_refused_next_to_the_button(nora: Browser) -> None:
    nora.post("/app/timer/start", START)

    refused = nora.post("/app/timer/start", {**START, "activity": "education"})

    assert refused.status_code == 409
    assert len(field_error(refused.text, "staff_id")) == 1
    assert "is running" in field_error(refused.text, "staff_id")[0]


def test_an_overlapping_entry_is_refused_next_to_the_start_field(
    nora: Browser, client: TestClient, tokens: Tokens
) -> None:
    recorded = client.post(
        "/time-entries",
        json=time_entry_body(start="2026-10-15T14:00:00Z", end="2026-10-15T14:30:00Z"),
        headers=tokens.headers(**care_manager()),
    )
    assert recorded.status_code == 201, recorded.text

    refused = nora.post(
        "/app/patients/pat-north-1/time-entries",
        {
            "program": "CCM",
            "activity": "check-in-call",
            "mode": "virtual",
            "start": "2026-10-15T14:10",
            "end": "2026-10-15T14:40",
        },
    )

    assert refused.status_code == 409
    assert field_error(refused.text, "start") == [
        f"overlaps time entry {recorded.json()['id']} of the same staff member"
    ]
    assert 'value="2026-10-15T14:10"' in refused.text  # the form as it was sent


def test_time_before_the_consent_is_refused_next_to_the_field(nora: Browser) -> None:
    refused = nora.post(
        "/app/patients/pat-north-1/time-entries",
        {
            "program": "CCM",
            "activity": "check-in-call",
            "mode": "virtual",
            "start": "2026-01-20T10:00",
            "end": "2026-01-20T10:30",
        },
    )

    assert refused.status_code == 422
    errors = [e for name in ("start", "end") for e in field_error(refused.text, name)]
    assert any("consent" in reason for reason in errors), refused.text


def test_a_timer_for_another_teams_patient_is_the_not_found_page(nora: Browser) -> None:
    refused = nora.post("/app/timer/start", {**START, "patient_id": "pat-south-1"})
    missing = nora.post("/app/timer/start", {**START, "patient_id": "pat-nobody"})

    assert refused.status_code == missing.status_code == 404
    assert refused.text == missing.text
    assert 'id="running-timer"' not in nora.client.get("/app/worklist").text


def test_a_form_without_its_csrf_token_is_refused(nora: Browser) -> None:
    response = nora.client.post("/app/timer/start", data=START)

    assert response.status_code == 403
    assert 'id="running-timer"' not in nora.client.get("/app/worklist").text


def test_a_form_with_another_sessions_csrf_token_is_refused(
    nora: Browser, client: TestClient, settings: Settings
) -> None:
    with TestClient(client.app) as other:
        stranger = sign_in(other, settings, NORA)
    response = nora.client.post("/app/timer/start", data={**START, "csrf_token": stranger.csrf})

    assert response.status_code == 403
