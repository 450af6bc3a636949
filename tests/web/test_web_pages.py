"""The worklist, billing-threshold and patient pages: the same data, order and permission rules
as the REST API, for the roles that may see them; another team's patient is the same 404 page
as a missing one. Nora's caseload is fixtures/workflow/worklist.yaml. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from fhirbridge.config import Settings
from fhirbridge.persistence.scratch import Backend
from tests.api.support import FakeClock, Tokens, care_manager
from tests.web.conftest import ADA, BILL, NORA, SAM, SUE, Browser, sign_in
from tests.worklist_caseload import WORKLIST, load_worklist

ROW = re.compile(r'data-kind="([^"]*)" data-patient="([^"]*)" data-record="([^"]*)"')


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def worklist_caseload(database_url: str) -> None:
    load_worklist(database_url)


@pytest.fixture
def nora(client: TestClient, settings: Settings) -> Browser:
    return sign_in(client, settings, NORA)


def _rows(html: str) -> list[tuple[str, str, str]]:
    return ROW.findall(html)


def test_the_worklist_page_lists_what_the_api_lists_in_the_same_order(
    nora: Browser, tokens: Tokens
) -> None:
    api = nora.client.get("/worklist", headers=tokens.headers(**care_manager())).json()

    page = nora.client.get("/app/worklist")

    assert page.status_code == 200
    expected = [(i["kind"], i["patient_id"] or "", i["record_id"] or "") for i in api["items"]]
    assert _rows(page.text) == expected
    assert [(k, p) for k, p, _ in _rows(page.text)] == [
        (k, p) for k, p, _ in WORKLIST["expected_order"]
    ]


def test_the_worklist_filters_by_kind_keeping_the_order(nora: Browser) -> None:
    page = nora.client.get("/app/worklist", params={"kind": "check-in"})

    assert [p for _, p, _ in _rows(page.text)] == [
        p for k, p, _ in WORKLIST["expected_order"] if k == "check-in"
    ]


def test_the_worklist_filters_by_urgency(nora: Browser) -> None:
    page = nora.client.get("/app/worklist", params={"urgency": "immediate"})

    assert _rows(page.text) == [("task", "pat-wl-low", "task-wl-stat")]


def test_the_start_page_of_a_care_manager_is_the_worklist(nora: Browser) -> None:
    response = nora.client.get("/app")

    assert (response.status_code, response.headers["location"]) == (303, "/app/worklist")


def test_a_supervisor_chooses_whose_worklist_to_see(client: TestClient, settings: Settings) -> None:
    sam = sign_in(client, settings, SAM)

    page = sam.client.get("/app/worklist", params={"staff_id": "cm-north"})

    assert page.status_code == 200
    assert len(_rows(page.text)) == len(WORKLIST["expected_order"])
    assert '<option value="cm-north" selected>' in page.text


def test_a_care_manager_may_not_open_a_colleagues_worklist(nora: Browser) -> None:
    assert nora.client.get("/app/worklist", params={"staff_id": "cm-north-2"}).status_code == 403


def test_billing_users_have_no_worklist(client: TestClient, settings: Settings) -> None:
    bill = sign_in(client, settings, BILL)

    assert bill.client.get("/app/worklist").status_code == 403
    assert bill.client.get("/app/patients/pat-wl-high").status_code == 403


def test_near_month_end_a_patient_short_of_a_threshold_shows_a_progress_bar(
    nora: Browser, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 10, 27, 15, 0, tzinfo=UTC)

    page = nora.client.get("/app/thresholds")

    assert page.status_code == 200
    assert "5 days left" in page.text
    item = re.search(r'<li data-patient="pat-wl-mod">(.*?)</li>', page.text, re.S)
    assert item is not None
    assert "17 of 20 min" in item.group(1)
    assert '<progress max="20" value="17"' in item.group(1)


def test_before_month_end_no_patient_is_listed_near_a_threshold(nora: Browser) -> None:
    page = nora.client.get("/app/thresholds")

    assert "17 days left" in page.text
    assert "data-patient=" not in page.text


def test_the_patient_page_shows_enrollment_consent_tasks_referrals_and_time(
    nora: Browser,
) -> None:
    page = nora.client.get("/app/patients/pat-wl-mod")

    assert page.status_code == 200
    text = page.text
    assert "CCM" in text
    assert "moderate" in text
    assert "given 2026-01-01" in text
    assert 'id="task-task-wl-overdue"' in text
    assert "/app/referrals/ref-wl-fresh" in text
    assert "/app/fhir/time-entries/te-wl-mod-oct" in text
    assert "/app/fhir/enrollments/enr-wl-mod" in text


def test_a_task_offers_only_the_moves_its_state_allows(nora: Browser) -> None:
    page = nora.client.get("/app/patients/pat-wl-mod").text
    row = re.search(r'id="task-task-wl-overdue">(.*?)</tr>', page, re.S)
    assert row is not None

    offered = re.findall(r'name="status" value="([^"]+)"', row.group(1))

    # in-progress moves to on-hold, completed, failed, cancelled, or is marked an error
    assert sorted(offered) == sorted(
        ["on-hold", "failed", "completed", "cancelled", "entered-in-error"]
    )


def test_a_task_owned_by_a_colleague_offers_no_moves_to_a_care_manager(nora: Browser) -> None:
    page = nora.client.get("/app/patients/pat-wl-high").text
    row = re.search(r'id="task-task-wl-colleague">(.*?)</tr>', page, re.S)
    assert row is not None

    assert 'name="status"' not in row.group(1)


def test_moving_a_task_goes_through_the_task_rules(nora: Browser) -> None:
    moved = nora.post(
        "/app/care-tasks/task-wl-overdue/status",
        {"status": "completed", "patient_id": "pat-wl-mod"},
    )

    assert moved.status_code == 303
    row = re.search(
        r'id="task-task-wl-overdue">(.*?)</tr>',
        nora.client.get("/app/patients/pat-wl-mod").text,
        re.S,
    )
    assert row is not None
    assert "<td>completed</td>" in row.group(1)
    assert 'name="status"' not in row.group(1)


def test_a_move_the_state_machine_refuses_is_shown_at_the_task(nora: Browser) -> None:
    refused = nora.post(
        "/app/care-tasks/task-wl-overdue/status",
        {"status": "requested", "patient_id": "pat-wl-mod"},
    )

    assert refused.status_code == 409
    assert "in-progress -&gt; requested" in refused.text


def test_another_teams_patient_is_the_same_page_as_a_missing_one(nora: Browser) -> None:
    other = nora.client.get("/app/patients/pat-wl-south")
    missing = nora.client.get("/app/patients/pat-nobody")

    assert other.status_code == missing.status_code == 404
    assert other.text == missing.text
    assert "pat-wl-south" not in other.text


def test_another_teams_record_in_the_fhir_view_is_the_same_page_as_a_missing_one(
    client: TestClient, settings: Settings
) -> None:
    sue = sign_in(client, settings, SUE)

    other = sue.client.get("/app/fhir/time-entries/te-wl-mod-oct")
    missing = sue.client.get("/app/fhir/time-entries/te-nobody")

    assert other.status_code == missing.status_code == 404
    assert other.text == missing.text


def test_the_fhir_view_shows_the_resource_a_record_maps_to(nora: Browser) -> None:
    page = nora.client.get("/app/fhir/enrollments/enr-wl-mod")

    assert page.status_code == 200
    assert "&#34;resourceType&#34;: &#34;EpisodeOfCare&#34;" in page.text


def test_a_page_without_a_session_sends_to_the_sign_in(client: TestClient) -> None:
    response = client.get("/app/patients/pat-wl-mod")

    assert response.status_code == 303
    assert response.headers["location"] == "/app/sign-in?next=/app/patients/pat-wl-mod"


def test_an_admin_without_a_staff_id_is_asked_whose_worklist_to_see(
    client: TestClient, settings: Settings
) -> None:
    ada = sign_in(client, settings, ADA)

    asked = ada.client.get("/app/worklist")
    chosen = ada.client.get("/app/worklist", params={"staff_id": "cm-north"})

    assert asked.status_code == 200
    assert "Choose a care team member" in asked.text
    assert 'value="cm-south"' in asked.text
    assert _rows(asked.text) == []
    assert len(_rows(chosen.text)) == len(WORKLIST["expected_order"])
