"""A change and its "needs sync" outbox entries are written together or not at all, and which
resources a record syncs as comes from the session's sync plan (the mapping files), never from
the caller."""

from __future__ import annotations

import pytest
from care_records import World
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.mapping.plan import SyncPlan
from fhirbridge.persistence import (
    EntityKind,
    OutboxOperation,
    OutboxState,
    Record,
    Store,
    SyncPlanMissing,
    SyncTarget,
    make_session_factory,
    unit_of_work,
)


class Interrupted(Exception):
    """Something fails after the save, before the unit of work ends."""


@pytest.fixture
def people_saved(sessions: sessionmaker[Session], world: World) -> World:
    with unit_of_work(sessions) as session:
        store = Store(session)
        people: list[Record] = [*world.patient_links, *world.care_team_members]
        for record in people:
            store.save(record)
    return world


def _save_then_fail(sessions: sessionmaker[Session], record: Record) -> None:
    with unit_of_work(sessions) as session:
        Store(session).save(record)
        raise Interrupted


def _pending(sessions: sessionmaker[Session]) -> list[SyncTarget]:
    with unit_of_work(sessions) as session:
        entries = Store(session).outbox.in_state(OutboxState.PENDING)
    return [entry.target for entry in entries]


def _resource_types(sessions: sessionmaker[Session], entry_ids: list[int]) -> list[str]:
    with unit_of_work(sessions) as session:
        store = Store(session)
        entries = [store.outbox.get(entry_id) for entry_id in entry_ids]
    return [entry.resource_type for entry in entries if entry is not None]


def test_save_writes_the_record_and_its_outbox_entry(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    enrollment = people_saved.enrollments[0]
    with unit_of_work(sessions) as session:
        Store(session).save(enrollment)
    with unit_of_work(sessions) as session:
        assert Store(session).enrollments.get(enrollment.id) == enrollment
    assert _pending(sessions) == [SyncTarget(EntityKind.ENROLLMENT, "enr-ccm", "EpisodeOfCare")]


def test_rollback_leaves_neither_record_nor_outbox_entry(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    enrollment = people_saved.enrollments[0]
    with pytest.raises(Interrupted):
        _save_then_fail(sessions, enrollment)
    with unit_of_work(sessions) as session:
        store = Store(session)
        assert store.enrollments.get(enrollment.id) is None
        assert store.outbox.counts()[OutboxState.PENDING] == 0


def test_a_referral_is_marked_once_per_resource_it_syncs_as_primary_first(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    with unit_of_work(sessions) as session:
        entry_ids = Store(session).save(people_saved.one("ref-cardio"))

    assert _resource_types(sessions, entry_ids) == ["ServiceRequest", "Task"]


def test_patients_and_care_team_members_mark_nothing(
    sessions: sessionmaker[Session], world: World
) -> None:
    with unit_of_work(sessions) as session:
        store = Store(session)
        written = [
            store.save(record) for record in (world.patient_links[0], world.care_team_members[0])
        ]

    assert written == [[], []]
    assert _pending(sessions) == []


def test_skip_leaves_out_the_resources_already_up_to_date(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    with unit_of_work(sessions) as session:
        Store(session).save(people_saved.one("ref-cardio"), skip=("Task",))

    assert _pending(sessions) == [SyncTarget(EntityKind.REFERRAL, "ref-cardio", "ServiceRequest")]


def test_the_resources_come_from_the_plan_the_session_factory_was_given(
    engine: Engine, people_saved: World
) -> None:
    plan = SyncPlan({"enrollment": ("EpisodeOfCare", "Flag")}, {"enrollment": 0})
    sessions = make_session_factory(engine, sync_plan=plan)
    with unit_of_work(sessions) as session:
        entry_ids = Store(session).save(people_saved.enrollments[0])

    assert _resource_types(sessions, entry_ids) == ["EpisodeOfCare", "Flag"]


def test_a_concept_the_plan_does_not_map_marks_nothing(engine: Engine, people_saved: World) -> None:
    sessions = make_session_factory(engine, sync_plan=SyncPlan({}, {}))
    with unit_of_work(sessions) as session:
        Store(session).save(people_saved.enrollments[0])

    assert _pending(sessions) == []


def test_a_session_without_a_plan_refuses_a_record_that_syncs_and_writes_nothing(
    engine: Engine, sessions: sessionmaker[Session], people_saved: World
) -> None:
    enrollment = people_saved.enrollments[0]
    without_plan = sessionmaker(bind=engine)
    with pytest.raises(SyncPlanMissing, match="enrollment"), unit_of_work(without_plan) as session:
        Store(session).save(enrollment)
    with unit_of_work(sessions) as session:
        assert Store(session).enrollments.get(enrollment.id) is None


def test_delete_removes_the_record_and_marks_a_delete_per_resource(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    with unit_of_work(sessions) as session:
        Store(session).save(people_saved.one("ref-cardio"))
    with unit_of_work(sessions) as session:
        entry_ids = Store(session).delete(EntityKind.REFERRAL, "ref-cardio")
    with unit_of_work(sessions) as session:
        store = Store(session)
        entries = [store.outbox.get(entry_id) for entry_id in entry_ids]
        assert store.referrals.get("ref-cardio") is None
    assert [(e.resource_type, e.operation) for e in entries if e is not None] == [
        ("ServiceRequest", OutboxOperation.DELETE),
        ("Task", OutboxOperation.DELETE),
    ]
