"""What is open about a care manager's caseload, read through ``store.worklist_rows``: one
statement per question, whatever the caseload size. fixtures/workflow/worklist.yaml holds
Nora North's caseload (cm-north), a colleague's patient and another team's patient."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.domain import Program, RiskLevel
from fhirbridge.persistence import Store
from fhirbridge.persistence.readmodels.worklist import CaseloadEnrollment, WorklistRows
from tests.api.support import load_caseload
from tests.worklist_caseload import load_worklist


@pytest.fixture
def rows(db_url: str, sessions: sessionmaker[Session]) -> Iterator[WorklistRows]:
    load_caseload(db_url)
    load_worklist(db_url)
    with sessions() as session:
        yield Store(session).worklist_rows


def test_the_caseload_is_the_enrollments_naming_the_care_manager_within_their_team(
    rows: WorklistRows,
) -> None:
    patients = {e.patient_id for e in rows.caseload("cm-north")}
    assert patients == {"pat-wl-high", "pat-wl-mod", "pat-wl-low", "pat-wl-new"}


def test_a_caseload_enrollment_carries_its_program_risk_level_and_start(
    rows: WorklistRows,
) -> None:
    (high,) = [e for e in rows.caseload("cm-north") if e.patient_id == "pat-wl-high"]
    assert high == CaseloadEnrollment("pat-wl-high", Program.CCM, RiskLevel.HIGH, date(2026, 1, 1))


def test_last_check_ins_are_the_latest_finished_check_in_call_of_each_patient_called(
    rows: WorklistRows,
) -> None:
    # pat-wl-mod's later care-coordination entry is no call; pat-wl-new was never called.
    assert rows.last_check_ins("cm-north") == {
        "pat-wl-high": datetime(2026, 9, 28, 14, 0, tzinfo=UTC),
        "pat-wl-mod": datetime(2026, 9, 16, 14, 0, tzinfo=UTC),
        "pat-wl-low": datetime(2026, 10, 1, 14, 0, tzinfo=UTC),
    }


def test_open_tasks_are_the_care_managers_own_and_the_unowned_ones_of_the_caseload(
    rows: WorklistRows,
) -> None:
    # Left out: a colleague's task about a caseload patient, and a completed one.
    ids = {t.id for t in rows.open_tasks("cm-north")}
    assert ids == {"task-wl-stat", "task-wl-overdue", "task-wl-unowned"}


def test_referrals_awaiting_a_response_are_those_the_performer_has_not_accepted(
    rows: WorklistRows,
) -> None:
    ids = {r.id for r in rows.awaiting_referrals("cm-north")}
    assert ids == {"ref-wl-late", "ref-wl-fresh"}


def test_an_open_conflict_names_the_caseload_patient_whose_record_it_is_about(
    rows: WorklistRows,
) -> None:
    (conflict,) = rows.open_conflicts("cm-north")
    assert (conflict.entity_kind, conflict.local_id, conflict.patient_id) == (
        "goal",
        "goal-wl-low",
        "pat-wl-low",
    )


def test_an_open_conflicts_detection_time_is_an_aware_utc_instant_on_both_backends(
    rows: WorklistRows,
) -> None:
    (conflict,) = rows.open_conflicts("cm-north")
    assert conflict.detected_at is not None
    assert conflict.detected_at.utcoffset() == timedelta(0)


def test_a_colleagues_caseload_is_the_patients_their_enrollments_name(rows: WorklistRows) -> None:
    assert [e.patient_id for e in rows.caseload("cm-north-2")] == ["pat-wl-ned"]


def test_every_question_is_one_statement(rows: WorklistRows, engine: Engine) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])  # (connection, cursor, statement, ...)

    event.listen(engine, "before_cursor_execute", count)
    try:
        rows.caseload("cm-north")
        rows.last_check_ins("cm-north")
        rows.open_tasks("cm-north")
        rows.awaiting_referrals("cm-north")
        rows.open_conflicts("cm-north")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # SQLite's BEGIN IMMEDIATE (persistence/db.py) opens the transaction; it asks nothing.
    assert len([s for s in statements if not s.startswith("BEGIN")]) == 5
