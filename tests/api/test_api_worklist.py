"""The care manager's worklist: what is due for whom, most urgent and riskiest first, a page
at a time; fixtures/workflow/worklist.yaml holds the caseload and the expected order."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from fhirbridge.domain import (
    CareTask,
    CareTaskKind,
    ConsentMethod,
    ConsentStatus,
    ContactMode,
    Enrollment,
    EnrollmentStatus,
    Goal,
    GoalLifecycle,
    PatientLink,
    Program,
    ProgramConsent,
    Referral,
    ReferralKind,
    ReferralStatus,
    RiskLevel,
    StaffRole,
    TaskPriority,
    TaskStatus,
    TimeEntry,
    TimeEntryActivity,
    TimeEntryStatus,
)
from fhirbridge.domain.codes import Code
from fhirbridge.persistence import EntityKind, Store, SyncTarget, make_engine, unit_of_work
from fhirbridge.persistence.scratch import Backend
from tests.api.support import FakeClock, Tokens, care_manager, supervisor
from tests.conftest import FIXTURES
from tests.sessions import session_factory

WORKLIST = yaml.safe_load((FIXTURES / "workflow" / "worklist.yaml").read_text())


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """The worklist is plain SQL: run it on both backends."""
    value: Backend = request.param
    return value


def _day(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(str(value))


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def load_worklist(url: str) -> None:
    engine = make_engine(url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            _store_worklist(Store(session))
    finally:
        engine.dispose()


def _store_worklist(store: Store) -> None:
    for p in WORKLIST["patients"]:
        store.save(PatientLink(**p))
    for e in WORKLIST["enrollments"]:
        enrollment = Enrollment(
            id=e["id"],
            patient_id=e["patient_id"],
            program=Program(e["program"]),
            status=EnrollmentStatus.ACTIVE,
            start=_day(e["start"]) or date.min,
            risk_level=RiskLevel(e["risk_level"]) if e.get("risk_level") else None,
            care_manager_id=e["care_manager_id"],
        )
        store.save(enrollment)
        store.save(
            ProgramConsent(
                id=f"con-{e['id']}",
                patient_id=enrollment.patient_id,
                enrollment_id=enrollment.id,
                program=enrollment.program,
                status=ConsentStatus.ACTIVE,
                given_on=_day(e["consent_given_on"]) or date.min,
                method=ConsentMethod.VERBAL,
                recorded_by_id="cm-north",
            )
        )
    for t in WORKLIST["time_entries"]:
        start = _moment(t["start"])
        store.save(
            TimeEntry(
                id=t["id"],
                status=TimeEntryStatus.FINISHED,
                patient_id=t["patient_id"],
                enrollment_id=t["enrollment_id"],
                program=Program.CCM,
                staff_id="cm-north",
                staff_role=StaffRole.RN,
                activity=TimeEntryActivity(t["activity"]),
                mode=ContactMode.VIRTUAL,
                start=start,
                end=start + timedelta(minutes=t["minutes"]),
                minutes=t["minutes"],
            )
        )
    for t in WORKLIST["tasks"]:
        store.save(
            CareTask(
                id=t["id"],
                status=TaskStatus(t["status"]),
                patient_id=t["patient_id"],
                kind=CareTaskKind(t["kind"]),
                priority=TaskPriority(t["priority"]) if t.get("priority") else None,
                owner_id=t.get("owner_id"),
                due_end=_day(t.get("due_end")),
            )
        )
    for r in WORKLIST["referrals"]:
        store.save(
            Referral(
                id=r["id"],
                status=ReferralStatus.ACTIVE,
                patient_id=r["patient_id"],
                kind=ReferralKind.SPECIALIST,
                service=Code("snomed", "3457005", "Patient referral"),
                authored_on=_moment(r["authored_on"]),
                requester_id="cm-north",
                task_status=TaskStatus(r["task_status"]),
            )
        )
    for g in WORKLIST["goals"]:
        store.save(Goal(lifecycle_status=GoalLifecycle.ACTIVE, **g))
    for c in WORKLIST["conflicts"]:
        target = SyncTarget(EntityKind(c["entity_kind"]), c["local_id"], c["resource_type"])
        store.conflicts.record(
            target=target,
            reason=c["reason"],
            fields=["description"],
            local={"resourceType": c["resource_type"]},
            remote={"resourceType": c["resource_type"]},
        )


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
