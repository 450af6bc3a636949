"""What an export covers, read through ``store.export_selection``: patients a page at a time,
narrowed by program and team, the patients a roster names, their records' ids, and which of
those changed since a moment. fixtures/persistence/export_selection.yaml holds the patients."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from care_records import World, load_world
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.domain import Goal, GoalLifecycle, Program
from fhirbridge.persistence import EntityKind, FhirLink, Store, unit_of_work
from fhirbridge.persistence.readmodels.export_selection import ExportSelectionRows

SINCE = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def practice(fixtures_dir: Path) -> World:
    return load_world(fixtures_dir / "persistence" / "export_selection.yaml")


@pytest.fixture
def selection(sessions: sessionmaker[Session], practice: World) -> Iterator[ExportSelectionRows]:
    with unit_of_work(sessions) as session:
        practice.save_all(Store(session))
    # Read-only, and begun lazily: a test may write in its own unit of work before reading.
    with sessions() as session:
        yield Store(session).export_selection


def test_a_patient_page_holds_the_next_ids_after_the_last_one_seen(
    selection: ExportSelectionRows,
) -> None:
    first = selection.patient_page(after=None, limit=3)
    assert (first, selection.patient_page(after=first[-1], limit=3)) == (
        ["pat-a", "pat-b", "pat-c"],
        ["pat-d"],
    )


def test_a_patient_page_keeps_only_patients_ever_enrolled_in_the_program(
    selection: ExportSelectionRows,
) -> None:
    assert selection.patient_page(after=None, limit=10, program=Program.CCM) == ["pat-a", "pat-c"]


def test_a_patient_page_keeps_only_the_teams_patients(selection: ExportSelectionRows) -> None:
    assert selection.patient_page(after=None, limit=10, team="south") == ["pat-c", "pat-d"]


def test_patients_are_found_by_id_ehr_reference_or_mrn_value_under_any_system(
    selection: ExportSelectionRows,
) -> None:
    found = selection.patients_named(
        ids={"pat-a"}, references={"Patient/ehr-d"}, mrn_values={"M-2"}
    )
    assert sorted((p.id, p.mrn_system) for p in found) == [
        ("pat-a", "urn:oid:1.1"),
        ("pat-b", "urn:oid:1.1"),
        ("pat-c", "urn:oid:2.2"),
        ("pat-d", None),
    ]


def test_named_patients_are_narrowed_by_program_and_team(selection: ExportSelectionRows) -> None:
    found = selection.patients_named(mrn_values={"M-1", "M-2"}, program=Program.CCM, team="north")
    assert [p.id for p in found] == ["pat-a"]


def test_naming_nobody_finds_nobody(selection: ExportSelectionRows) -> None:
    assert selection.patients_named() == []


def test_record_ids_are_the_kinds_records_of_the_given_patients_sorted(
    selection: ExportSelectionRows,
) -> None:
    assert selection.record_ids(EntityKind.GOAL, ["pat-c", "pat-a"]) == [
        "goal-a-1",
        "goal-a-2",
        "goal-c-1",
    ]


def _goal(goal_id: str) -> Goal:
    return Goal(id=goal_id, patient_id="pat-b", lifecycle_status=GoalLifecycle.ACTIVE)


def test_a_record_changed_since_a_moment_has_a_change_queued_at_or_after_it(
    sessions: sessionmaker[Session], selection: ExportSelectionRows
) -> None:
    with unit_of_work(sessions) as session:
        Store(session, clock=lambda: SINCE - timedelta(seconds=1)).save(_goal("goal-before"))
        Store(session, clock=lambda: SINCE).save(_goal("goal-at"))
    changed = selection.changed_since(EntityKind.GOAL, ["goal-before", "goal-at"], SINCE)
    assert changed == {"goal-at"}


def test_a_record_changed_since_a_moment_has_a_server_copy_synced_at_or_after_it(
    sessions: sessionmaker[Session], selection: ExportSelectionRows
) -> None:
    # Queued long before the moment asked about: only the sync can make them count as changed.
    with unit_of_work(sessions) as session:
        store = Store(session, clock=lambda: SINCE - timedelta(days=30))
        for goal_id, synced_at in (("goal-old", SINCE - timedelta(seconds=1)), ("goal-new", SINCE)):
            store.save(_goal(goal_id))
            store.fhir_links.upsert(
                FhirLink(EntityKind.GOAL, goal_id, "Goal", f"srv-{goal_id}", synced_at=synced_at)
            )
    changed = selection.changed_since(EntityKind.GOAL, ["goal-old", "goal-new"], SINCE)
    assert changed == {"goal-new"}


def test_changed_since_of_no_records_is_empty(selection: ExportSelectionRows) -> None:
    assert selection.changed_since(EntityKind.GOAL, [], SINCE) == set()
