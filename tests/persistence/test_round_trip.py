"""Every domain record reads back exactly as it was saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from care_records import World
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.domain import Party, TaskStatus
from fhirbridge.persistence import (
    EntityKind,
    RecordExists,
    RecordNotFound,
    Store,
    entity_kind_of,
    unit_of_work,
)

RECORD_IDS = [
    "pat-1",
    "pat-2",
    "cm-md",
    "cm-chw",
    "enr-ccm",
    "enr-pcm-old",
    "con-ccm",
    "goal-a1c",
    "goal-walk",
    "plan-1",
    "task-call",
    "task-external",
    "te-1",
    "te-2",
    "te-3",
    "ref-food",
    "ref-cardio",
]


@pytest.fixture
def saved_world(sessions: sessionmaker[Session], world: World) -> World:
    with unit_of_work(sessions) as session:
        world.save_all(Store(session))
    return world


@pytest.mark.parametrize("record_id", RECORD_IDS)
def test_record_reads_back_equal_to_what_was_saved(
    sessions: sessionmaker[Session], saved_world: World, record_id: str
) -> None:
    saved = saved_world.one(record_id)
    with unit_of_work(sessions) as session:
        loaded = Store(session).repository(entity_kind_of(saved)).get(record_id)
    assert loaded == saved


def test_update_is_read_back(sessions: sessionmaker[Session], saved_world: World) -> None:
    with unit_of_work(sessions) as session:
        store = Store(session)
        referral = store.referrals.require("ref-cardio")
        referral.move_task(TaskStatus.CANCELLED, by=Party.REQUESTER, reason="patient moved")
        store.referrals.update(referral)
    with unit_of_work(sessions) as session:
        reloaded = Store(session).referrals.require("ref-cardio")
    assert (reloaded.task_status, reloaded.task_status_reason) == (
        TaskStatus.CANCELLED,
        "patient moved",
    )


def test_care_plan_lists_are_rewritten_in_their_new_order(
    sessions: sessionmaker[Session], saved_world: World
) -> None:
    with unit_of_work(sessions) as session:
        store = Store(session)
        plan = store.care_plans.require("plan-1")
        plan.goal_ids = ["goal-a1c"]
        plan.contributor_ids = ["cm-chw", "cm-md"]
        store.care_plans.save(plan)
    with unit_of_work(sessions) as session:
        reloaded = Store(session).care_plans.require("plan-1")
    assert (reloaded.goal_ids, reloaded.contributor_ids) == (["goal-a1c"], ["cm-chw", "cm-md"])


def test_plans_listing_a_goal_are_found(
    sessions: sessionmaker[Session], saved_world: World
) -> None:
    with unit_of_work(sessions) as session:
        plans = Store(session).care_plans.listing_goal("goal-walk")
    assert [plan.id for plan in plans] == ["plan-1"]


def test_list_for_patient_returns_only_that_patients_records(
    sessions: sessionmaker[Session], saved_world: World
) -> None:
    with unit_of_work(sessions) as session:
        referrals = Store(session).referrals.list_for_patient("pat-2")
    assert [referral.id for referral in referrals] == ["ref-cardio"]


def test_time_entries_for_staff_are_those_started_in_the_window(
    sessions: sessionmaker[Session], saved_world: World
) -> None:
    february = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
    with unit_of_work(sessions) as session:
        entries = Store(session).time_entries.list_for_staff(
            "cm-rn", since=february[0], until=february[1]
        )
    assert [entry.id for entry in entries] == ["te-1"]


def test_timestamps_come_back_as_the_same_instant_in_utc(
    sessions: sessionmaker[Session], saved_world: World
) -> None:
    with unit_of_work(sessions) as session:
        entry = Store(session).time_entries.require("te-1")
    assert entry.start is not None
    assert entry.start.tzinfo == UTC
    assert entry.start == datetime(2025, 2, 4, 15, 0, tzinfo=timezone(timedelta(hours=1)))


def test_naive_datetimes_are_refused(sessions: sessionmaker[Session], saved_world: World) -> None:
    task = saved_world.one("task-call")
    task.authored_on = datetime(2025, 2, 1, 9, 15)  # type: ignore[union-attr]
    with pytest.raises(StatementError, match="naive datetime"), unit_of_work(sessions) as session:
        Store(session).save(task)


def test_adding_a_stored_id_raises_record_exists(
    sessions: sessionmaker[Session], saved_world: World
) -> None:
    with pytest.raises(RecordExists) as raised, unit_of_work(sessions) as session:
        Store(session).goals.add(saved_world.goals[0])
    assert (raised.value.entity_kind, raised.value.local_id) == (EntityKind.GOAL, "goal-a1c")


def test_updating_an_unknown_id_raises_record_not_found(
    sessions: sessionmaker[Session], world: World
) -> None:
    with pytest.raises(RecordNotFound) as raised, unit_of_work(sessions) as session:
        Store(session).patients.update(world.patient_links[0])
    assert raised.value.local_id == "pat-1"
