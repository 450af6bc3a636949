"""The database refuses records that break the schema's rules, naming the rule, and makes
writers of the rules no row constraint states (a staff member's time, an idempotency key) take
turns."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from care_records import World
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.domain import CarePlan, CarePlanStatus, TimeEntry
from fhirbridge.persistence import ConstraintViolation, Record, Store, unit_of_work
from fhirbridge.persistence.repositories.idempotency import Claim, IdempotencyRecord


@pytest.fixture
def people_saved(sessions: sessionmaker[Session], world: World) -> World:
    with unit_of_work(sessions) as session:
        store = Store(session)
        records: list[Record] = [
            *world.patient_links,
            *world.care_team_members,
            *world.enrollments,
        ]
        for record in records:
            store.save(record)
    return world


def _entry(world: World) -> TimeEntry:
    return dataclasses.replace(world.time_entries[0])


def test_negative_minutes_are_refused(sessions: sessionmaker[Session], people_saved: World) -> None:
    entry = dataclasses.replace(_entry(people_saved), minutes=-5)
    with pytest.raises(ConstraintViolation) as raised, unit_of_work(sessions) as session:
        Store(session).save(entry)
    assert "minutes_not_negative" in raised.value.constraint


def test_time_entry_ending_before_it_starts_is_refused(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    entry = _entry(people_saved)
    assert entry.start is not None
    entry = dataclasses.replace(entry, end=entry.start - timedelta(minutes=1))
    with pytest.raises(ConstraintViolation) as raised, unit_of_work(sessions) as session:
        Store(session).save(entry)
    assert "period" in raised.value.constraint


def test_record_of_an_unknown_patient_is_refused(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    entry = dataclasses.replace(_entry(people_saved), patient_id="nobody")
    with pytest.raises(ConstraintViolation) as raised, unit_of_work(sessions) as session:
        Store(session).save(entry)
    assert raised.value.local_id == "te-1"


def test_care_plan_listing_an_unknown_goal_is_refused_at_commit(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    plan = CarePlan(
        id="plan-x", patient_id="pat-1", status=CarePlanStatus.DRAFT, goal_ids=["no-such-goal"]
    )
    # The listed rows are checked at commit so a plan and its tasks can be saved in any order.
    with pytest.raises(IntegrityError), unit_of_work(sessions) as session:
        Store(session).save(plan)
    with unit_of_work(sessions) as session:
        assert Store(session).care_plans.get("plan-x") is None


# A lock holder waits this long before writing: a transaction that did not wait for the lock
# reads before that write is committed, and sees nothing.
HOLD = 0.5


def _read_after_holder(
    sessions: sessionmaker[Session],
    lock: Callable[[Store], None],
    write: Callable[[Store], object],
    read: Callable[[Store], object],
) -> object:
    """Take ``lock`` in a transaction that then writes slowly; take it again in a second one
    and return what that one reads."""
    held = threading.Event()

    def holder() -> None:
        with unit_of_work(sessions) as session:
            store = Store(session)
            lock(store)
            held.set()
            time.sleep(HOLD)
            write(store)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(timeout=10)
        with unit_of_work(sessions) as session:
            store = Store(session)
            lock(store)
            return read(store)
    finally:
        thread.join(timeout=30)


def test_a_writer_of_a_staff_members_time_waits_for_the_one_before_and_sees_its_entry(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    entry = _entry(people_saved)
    assert entry.staff_id is not None
    staff_id = entry.staff_id
    seen = _read_after_holder(
        sessions,
        lock=lambda store: store.time_entries.lock_staff(staff_id),
        write=lambda store: store.save(entry),
        read=lambda store: [e.id for e in store.time_entries.list_for_staff(staff_id)],
    )
    assert seen == [entry.id]


def test_a_request_with_an_idempotency_key_waits_for_the_one_before_and_sees_its_answer(
    sessions: sessionmaker[Session],
) -> None:
    def lock(store: Store) -> None:
        store.idempotency.lock(principal="user:nora", key="retry-1")

    def remember(store: Store) -> None:
        store.idempotency.remember(
            principal="user:nora",
            key="retry-1",
            method="POST",
            path="/time-entries",
            request_hash="h",
            status_code=201,
            response_body={"content": {"id": "te-1"}},
        )

    def find(store: Store) -> object:
        found = store.idempotency.find(principal="user:nora", key="retry-1")
        return None if found is None else found.status_code

    assert _read_after_holder(sessions, lock=lock, write=remember, read=find) == 201


def _claim(store: Store, request_hash: str = "h") -> object:
    return store.idempotency.claim(
        principal="user:nora",
        key="retry-2",
        method="POST",
        path="/time-entries",
        request_hash=request_hash,
    )


class Interrupted(Exception):
    pass


def test_a_claim_of_an_idempotency_key_waits_for_the_claim_before_and_gets_its_answer(
    sessions: sessionmaker[Session],
) -> None:
    claimed: list[object] = []

    def settle(store: Store) -> None:
        claim = claimed.pop()
        assert isinstance(claim, Claim)
        store.idempotency.settle(claim, status_code=201, response_body={"content": {"id": "x"}})

    def read(store: Store) -> object:
        found = claimed.pop()
        assert isinstance(found, IdempotencyRecord), found
        return found.status_code, found.response_body, found.request_hash

    seen = _read_after_holder(
        sessions, lock=lambda store: claimed.append(_claim(store)), write=settle, read=read
    )
    assert seen == (201, {"content": {"id": "x"}}, "h")
    with unit_of_work(sessions) as session:
        assert Store(session).idempotency.find(principal="user:nora", key="retry-2") is not None


def test_a_claim_of_an_idempotency_key_rolled_back_leaves_the_key_to_the_one_waiting(
    sessions: sessionmaker[Session],
) -> None:
    held = threading.Event()

    def refused(store: Store) -> None:
        assert isinstance(_claim(store), Claim)
        held.set()
        time.sleep(HOLD)
        raise Interrupted  # the request was refused: nothing is stored

    def holder() -> None:
        with contextlib.suppress(Interrupted), unit_of_work(sessions) as session:
            refused(Store(session))

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(timeout=10)
        with unit_of_work(sessions) as session:
            store = Store(session)
            claim = _claim(store, request_hash="h2")
            assert isinstance(claim, Claim)
            store.idempotency.settle(claim, status_code=201, response_body=None)
    finally:
        thread.join(timeout=30)
    with unit_of_work(sessions) as session:
        found = Store(session).idempotency.find(principal="user:nora", key="retry-2")
    assert found is not None
    assert (found.status_code, found.request_hash) == (201, "h2")
