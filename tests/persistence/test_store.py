"""A change and its "needs sync" outbox entry are written together or not at all."""

from __future__ import annotations

import pytest
from care_records import World
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.persistence import (
    EntityKind,
    OutboxOperation,
    OutboxState,
    Record,
    Store,
    SyncTarget,
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


def _save_then_fail(sessions: sessionmaker[Session], record: Record, *, sync_as: list[str]) -> None:
    with unit_of_work(sessions) as session:
        Store(session).save(record, sync_as=sync_as)
        raise Interrupted


def _pending(sessions: sessionmaker[Session]) -> list[SyncTarget]:
    with unit_of_work(sessions) as session:
        entries = Store(session).outbox.in_state(OutboxState.PENDING)
    return [entry.target for entry in entries]


def test_save_writes_the_record_and_its_outbox_entry(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    enrollment = people_saved.enrollments[0]
    with unit_of_work(sessions) as session:
        Store(session).save(enrollment, sync_as=["EpisodeOfCare"])
    with unit_of_work(sessions) as session:
        assert Store(session).enrollments.get(enrollment.id) == enrollment
    assert _pending(sessions) == [SyncTarget(EntityKind.ENROLLMENT, "enr-ccm", "EpisodeOfCare")]


def test_rollback_leaves_neither_record_nor_outbox_entry(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    enrollment = people_saved.enrollments[0]
    with pytest.raises(Interrupted):
        _save_then_fail(sessions, enrollment, sync_as=["EpisodeOfCare"])
    with unit_of_work(sessions) as session:
        store = Store(session)
        assert store.enrollments.get(enrollment.id) is None
        assert store.outbox.counts()[OutboxState.PENDING] == 0


def test_a_record_is_marked_once_per_resource_type(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    referral = people_saved.one("ref-cardio")
    with unit_of_work(sessions) as session:
        Store(session).save(referral, sync_as=["ServiceRequest", "Task"])
    assert sorted(target.resource_type for target in _pending(sessions)) == [
        "ServiceRequest",
        "Task",
    ]


def test_saving_without_sync_as_marks_nothing(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    with unit_of_work(sessions) as session:
        Store(session).save(people_saved.one("ref-cardio"))
    assert _pending(sessions) == []


def test_delete_removes_the_record_and_marks_a_delete(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    with unit_of_work(sessions) as session:
        Store(session).save(people_saved.one("ref-cardio"), sync_as=["ServiceRequest"])
    with unit_of_work(sessions) as session:
        store = Store(session)
        (entry_id,) = store.delete(EntityKind.REFERRAL, "ref-cardio", sync_as=["ServiceRequest"])
    with unit_of_work(sessions) as session:
        store = Store(session)
        entry = store.outbox.get(entry_id)
        assert store.referrals.get("ref-cardio") is None
    assert entry is not None
    assert entry.operation is OutboxOperation.DELETE
