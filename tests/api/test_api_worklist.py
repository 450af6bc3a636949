"""The care manager's worklist: what is due for whom, most urgent and riskiest first, a page
at a time; fixtures/workflow/worklist.yaml holds the caseload and the expected order."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from fhirbridge.billing.loader import available_rule_years
from fhirbridge.domain import TimeEntry
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.persistence.scratch import Backend
from fhirbridge.services.worklist import WorklistPolicy, build_worklist, threshold_rules
from tests.api.support import FakeClock, Tokens, care_manager, supervisor
from tests.sessions import session_factory
from tests.worklist_caseload import WORKLIST, load_worklist, time_entry


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """The worklist is plain SQL: run it on both backends."""
    value: Backend = request.param
    return value


@pytest.fixture
def worklist_url(database_url: str) -> str:
    load_worklist(database_url)
    return database_url


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _worklist(client: TestClient, headers: dict[str, str], **params: Any) -> Any:
    response = client.get("/worklist", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _keys(items: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [i["kind"], i["patient_id"], i["record_id"] if i["kind"] in ("task", "referral") else None]
        for i in items
    ]


@pytest.mark.usefixtures("worklist_url")
def test_the_worklist_is_ordered_by_urgency_then_risk(
    client: TestClient, nora: dict[str, str]
) -> None:
    assert _keys(_worklist(client, nora)["items"]) == WORKLIST["expected_order"]


@pytest.mark.usefixtures("worklist_url")
def test_a_page_holds_page_size_items_and_the_total_counts_them_all(
    client: TestClient, nora: dict[str, str]
) -> None:
    page = _worklist(client, nora, page=2, page_size=4)
    assert (page["page"], page["page_size"], page["total"]) == (2, 4, 9)
    assert _keys(page["items"]) == WORKLIST["expected_order"][4:8]


@pytest.mark.usefixtures("worklist_url")
def test_a_page_past_the_end_is_empty(client: TestClient, nora: dict[str, str]) -> None:
    page = _worklist(client, nora, page=3, page_size=5)
    assert (page["total"], page["items"]) == (9, [])


@pytest.mark.usefixtures("worklist_url")
def test_a_high_risk_patient_is_due_for_a_check_in_every_two_weeks(
    client: TestClient, nora: dict[str, str]
) -> None:
    items = _worklist(client, nora)["items"]
    (high,) = [i for i in items if i["kind"] == "check-in" and i["patient_id"] == "pat-wl-high"]
    assert (high["due_on"], high["urgency"], high["overdue"]) == ("2026-10-12", "overdue", True)


@pytest.mark.usefixtures("worklist_url")
def test_a_patient_called_this_month_is_not_due(client: TestClient, nora: dict[str, str]) -> None:
    items = _worklist(client, nora)["items"]
    assert [i for i in items if i["kind"] == "check-in" and i["patient_id"] == "pat-wl-low"] == []


@pytest.mark.usefixtures("worklist_url")
def test_a_referral_past_its_service_level_is_flagged_overdue(
    client: TestClient, nora: dict[str, str]
) -> None:
    items = _worklist(client, nora)["items"]
    referrals = {i["record_id"]: i for i in items if i["kind"] == "referral"}
    assert (referrals["ref-wl-late"]["overdue"], referrals["ref-wl-fresh"]["overdue"]) == (
        True,
        False,
    )
    assert "ref-wl-accepted" not in referrals


@pytest.mark.usefixtures("worklist_url")
def test_other_care_managers_and_other_teams_patients_are_left_out(
    client: TestClient, nora: dict[str, str]
) -> None:
    patients = {i["patient_id"] for i in _worklist(client, nora)["items"]}
    assert patients.isdisjoint({"pat-wl-ned", "pat-wl-south"})


@pytest.mark.usefixtures("worklist_url")
def test_no_billing_threshold_items_before_month_end(
    client: TestClient, nora: dict[str, str]
) -> None:
    kinds = {i["kind"] for i in _worklist(client, nora)["items"]}
    assert "billing-threshold" not in kinds


@pytest.mark.usefixtures("worklist_url")
def test_near_month_end_a_patient_a_few_minutes_short_of_a_code_is_listed(
    client: TestClient, nora: dict[str, str], clock: FakeClock
) -> None:
    clock.now = datetime(2026, 10, 27, 15, 0, tzinfo=UTC)
    items = _worklist(client, nora, page_size=200)["items"]
    near = [i for i in items if i["kind"] == "billing-threshold"]
    assert [(i["patient_id"], i["code"], i["minutes"], i["threshold_minutes"]) for i in near] == [
        ("pat-wl-mod", "99490", 17, 20)
    ]


@pytest.mark.usefixtures("worklist_url")
def test_a_care_manager_may_not_see_a_colleagues_worklist(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.get("/worklist", params={"staff_id": "cm-north-2"}, headers=nora)
    assert response.status_code == 403


@pytest.mark.usefixtures("worklist_url")
def test_a_supervisor_sees_a_team_members_worklist(client: TestClient, tokens: Tokens) -> None:
    page = _worklist(client, tokens.headers(**supervisor()), staff_id="cm-north")
    assert (page["staff_id"], page["total"]) == ("cm-north", 9)


@pytest.mark.usefixtures("worklist_url")
def test_another_teams_supervisor_cannot_see_it(client: TestClient, tokens: Tokens) -> None:
    south = {**supervisor(team="south"), "staff_id": "cm-south"}
    response = client.get(
        "/worklist", params={"staff_id": "cm-north"}, headers=tokens.headers(**south)
    )
    assert response.status_code == 404


def test_an_empty_caseload_gives_an_empty_worklist(
    client: TestClient, nora: dict[str, str]
) -> None:
    assert _worklist(client, nora)["items"] == []


@pytest.mark.parametrize("params", [{"page": 0}, {"page_size": 0}, {"page_size": 201}])
def test_page_numbers_and_sizes_out_of_range_are_refused(
    client: TestClient, nora: dict[str, str], params: dict[str, int]
) -> None:
    response = client.get("/worklist", params=params, headers=nora)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [f"query.{next(iter(params))}"]


# -- billing rules at the turn of the year -------------------------------------------------
# The newest rule file shipped, and the year after it, which has none yet (CY2026 and 2027 as
# this is written); computed so the tests keep meaning the same once the next file ships.
RULED_YEAR = max(available_rule_years())
UNRULED_YEAR = RULED_YEAR + 1


def _add_time_entry(url: str, entry: TimeEntry) -> None:
    engine = make_engine(url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            Store(session).save(entry)
    finally:
        engine.dispose()


@pytest.mark.usefixtures("worklist_url")
def test_on_january_first_without_the_new_years_rules_the_latest_rules_are_used_and_said(
    client: TestClient, nora: dict[str, str], clock: FakeClock
) -> None:
    clock.now = datetime(UNRULED_YEAR, 1, 1, 9, 0, tzinfo=UTC)
    page = _worklist(client, nora)
    assert page["rules_year"] == RULED_YEAR
    assert page["notes"] == [
        f"no billing rules for CY{UNRULED_YEAR} yet: billing-threshold items use "
        f"CY{RULED_YEAR}'s thresholds"
    ]


def test_near_the_end_of_a_month_without_its_years_rules_thresholds_come_from_the_latest(
    client: TestClient, nora: dict[str, str], clock: FakeClock, worklist_url: str
) -> None:
    _add_time_entry(
        worklist_url,
        time_entry(
            id="te-wl-mod-jan",
            patient_id="pat-wl-mod",
            enrollment_id="enr-wl-mod",
            activity="care-coordination",
            start=f"{UNRULED_YEAR}-01-05T14:00:00Z",
            minutes=17,
        ),
    )
    clock.now = datetime(UNRULED_YEAR, 1, 27, 15, 0, tzinfo=UTC)
    items = _worklist(client, nora, page_size=200)["items"]
    near = [i for i in items if i["kind"] == "billing-threshold"]
    assert [(i["patient_id"], i["code"], i["minutes"], i["threshold_minutes"]) for i in near] == [
        ("pat-wl-mod", "99490", 17, 20)
    ]


@pytest.mark.usefixtures("worklist_url")
def test_on_december_thirty_first_the_years_own_rules_are_used_without_a_note(
    client: TestClient, nora: dict[str, str], clock: FakeClock
) -> None:
    clock.now = datetime(RULED_YEAR, 12, 31, 15, 0, tzinfo=UTC)
    page = _worklist(client, nora)
    assert (page["rules_year"], page["notes"]) == (RULED_YEAR, [])


def test_without_any_usable_billing_rules_the_worklist_still_comes_and_says_why(
    worklist_url: str, tmp_path: Path
) -> None:
    now = datetime(RULED_YEAR, 10, 27, 15, 0, tzinfo=UTC)  # month end: thresholds would run
    engine = make_engine(worklist_url)
    try:
        with session_factory(engine)() as session:
            found = build_worklist(
                store=Store(session),
                staff_id="cm-north",
                now=now,
                tz=ZoneInfo("UTC"),
                policy=WorklistPolicy(),
                rules=threshold_rules(RULED_YEAR, rules_dir=tmp_path),  # an empty rules folder
            )
    finally:
        engine.dispose()
    assert (found.total, found.rules_year, found.notes) == (
        9,
        None,
        (f"no usable billing rules for CY{RULED_YEAR}: billing-threshold items are not listed",),
    )
