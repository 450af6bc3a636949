"""The outbox: coalescing, claiming, failures, dead letters and retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.persistence import (
    EntityKind,
    OutboxEntry,
    OutboxOperation,
    OutboxState,
    OutboxStateError,
    SyncTarget,
    unit_of_work,
)
from fhirbridge.persistence.repositories import Outbox
from fhirbridge.persistence.repositories.outbox import waiting_since
from tests.sessions import session_factory

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PLAN = SyncTarget(EntityKind.CARE_PLAN, "plan-1", "CarePlan")
GOAL = SyncTarget(EntityKind.GOAL, "goal-1", "Goal")
TASK = SyncTarget(EntityKind.CARE_TASK, "task-1", "Task")
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}


def _enqueue(sessions: sessionmaker[Session], *targets: SyncTarget, at: datetime = T0) -> list[int]:
    with unit_of_work(sessions) as session:
        return [Outbox(session).enqueue(target, now=at) for target in targets]


def _claim(
    sessions: sessionmaker[Session], batch_size: int = 10, at: datetime = T0, worker: str = "w1"
) -> list[OutboxEntry]:
    with unit_of_work(sessions) as session:
        return Outbox(session).claim(batch_size=batch_size, worker_id=worker, now=at)


def _get(sessions: sessionmaker[Session], entry_id: int) -> OutboxEntry:
    with unit_of_work(sessions) as session:
        entry = Outbox(session).get(entry_id)
    assert entry is not None
    return entry


def test_changes_before_a_push_coalesce_into_one_entry(sessions: sessionmaker[Session]) -> None:
    first = _enqueue(sessions, PLAN)
    second = _enqueue(sessions, PLAN, at=T0 + timedelta(minutes=1))
    assert first == second


def test_the_latest_operation_wins_when_coalescing(sessions: sessionmaker[Session]) -> None:
    (entry_id,) = _enqueue(sessions, PLAN)
    with unit_of_work(sessions) as session:
        Outbox(session).enqueue(PLAN, operation=OutboxOperation.DELETE, now=T0)
    assert _get(sessions, entry_id).operation is OutboxOperation.DELETE


def test_a_change_made_during_a_push_gets_its_own_entry(sessions: sessionmaker[Session]) -> None:
    (in_flight,) = _enqueue(sessions, PLAN)
    _claim(sessions)
    (newer,) = _enqueue(sessions, PLAN)
    assert newer != in_flight


def test_claim_takes_due_entries_oldest_first_and_marks_them_in_flight(
    sessions: sessionmaker[Session],
) -> None:
    _enqueue(sessions, TASK, at=T0)
    _enqueue(sessions, PLAN, at=T0 - timedelta(minutes=5))
    claimed = _claim(sessions, worker="worker-7")
    assert [(e.target, e.state, e.claimed_by, e.attempts) for e in claimed] == [
        (PLAN, OutboxState.IN_FLIGHT, "worker-7", 1),
        (TASK, OutboxState.IN_FLIGHT, "worker-7", 1),
    ]


def test_claim_takes_at_most_batch_size(sessions: sessionmaker[Session]) -> None:
    _enqueue(sessions, PLAN, GOAL, TASK)
    assert len(_claim(sessions, batch_size=2)) == 2


def test_claim_leaves_entries_that_are_not_due_yet(sessions: sessionmaker[Session]) -> None:
    _enqueue(sessions, PLAN, at=T0 + timedelta(minutes=1))
    assert _claim(sessions, at=T0) == []


def test_claimed_entries_are_not_claimed_again(sessions: sessionmaker[Session]) -> None:
    _enqueue(sessions, PLAN, GOAL)
    first = _claim(sessions, worker="w1")
    assert (len(first), _claim(sessions, worker="w2")) == (2, [])


def test_concurrent_claims_on_postgresql_take_disjoint_entries(postgres_engine: Engine) -> None:
    # SQLite admits one writer at a time, so only PostgreSQL can have two claims in progress.
    sessions = session_factory(postgres_engine)
    _enqueue(sessions, PLAN, GOAL, TASK)
    with sessions() as first, sessions() as second:
        # first holds its row locks (no commit yet) while second claims.
        mine = Outbox(first).claim(batch_size=2, worker_id="w1", now=T0)
        theirs = Outbox(second).claim(batch_size=2, worker_id="w2", now=T0)
        first.rollback()
        second.rollback()
    assert ({e.id for e in mine} & {e.id for e in theirs}, len(mine) + len(theirs)) == (set(), 3)


def test_done_entries_are_not_claimed(sessions: sessionmaker[Session]) -> None:
    (entry_id,) = _enqueue(sessions, PLAN)
    _claim(sessions)
    with unit_of_work(sessions) as session:
        Outbox(session).mark_done(entry_id, now=T0)
    assert (_get(sessions, entry_id).state, _claim(sessions, at=T0 + timedelta(days=1))) == (
        OutboxState.DONE,
        [],
    )


def test_a_transient_failure_waits_until_retry_at(sessions: sessionmaker[Session]) -> None:
    (entry_id,) = _enqueue(sessions, PLAN)
    _claim(sessions)
    retry_at = T0 + timedelta(minutes=10)
    with unit_of_work(sessions) as session:
        Outbox(session).mark_failed(entry_id, transient=True, error="503", retry_at=retry_at)
    assert _claim(sessions, at=retry_at - timedelta(seconds=1)) == []
    assert [e.id for e in _claim(sessions, at=retry_at)] == [entry_id]


def test_a_permanent_failure_makes_a_dead_letter_with_the_outcome(
    sessions: sessionmaker[Session],
) -> None:
    (entry_id,) = _enqueue(sessions, PLAN)
    _claim(sessions)
    with unit_of_work(sessions) as session:
        Outbox(session).mark_failed(entry_id, transient=False, error="422", outcome=OUTCOME)
    with unit_of_work(sessions) as session:
        dead = Outbox(session).dead_letters()
    assert [(e.id, e.last_error, e.last_outcome) for e in dead] == [(entry_id, "422", OUTCOME)]


def test_retry_makes_a_dead_letter_pending_again_with_fresh_attempts(
    sessions: sessionmaker[Session],
) -> None:
    (entry_id,) = _enqueue(sessions, PLAN)
    _claim(sessions)
    with unit_of_work(sessions) as session:
        Outbox(session).mark_failed(entry_id, transient=False, error="422")
    with unit_of_work(sessions) as session:
        retried = Outbox(session).retry(entry_id, now=T0)
    entry = _get(sessions, entry_id)
    assert (retried, entry.state, entry.attempts) == (entry_id, OutboxState.PENDING, 0)


def test_retry_of_a_dead_letter_a_newer_change_covers_yields_the_newer_entry(
    sessions: sessionmaker[Session],
) -> None:
    (dead_id,) = _enqueue(sessions, PLAN)
    _claim(sessions)
    with unit_of_work(sessions) as session:
        Outbox(session).mark_failed(dead_id, transient=False, error="422")
    (newer_id,) = _enqueue(sessions, PLAN)
    with unit_of_work(sessions) as session:
        retried = Outbox(session).retry(dead_id, now=T0)
    assert (retried, _get(sessions, dead_id).state) == (newer_id, OutboxState.DONE)


def test_retry_refuses_an_entry_that_is_not_dead(sessions: sessionmaker[Session]) -> None:
    (entry_id,) = _enqueue(sessions, PLAN)
    with pytest.raises(OutboxStateError), unit_of_work(sessions) as session:
        Outbox(session).retry(entry_id)


def test_a_transient_failure_a_newer_change_covers_is_retired(
    sessions: sessionmaker[Session],
) -> None:
    (old_id,) = _enqueue(sessions, PLAN)
    _claim(sessions)
    (newer_id,) = _enqueue(sessions, PLAN)
    retry_at = T0 + timedelta(minutes=10)
    with unit_of_work(sessions) as session:
        Outbox(session).mark_failed(old_id, transient=True, error="503", retry_at=retry_at)
    old, newer = _get(sessions, old_id), _get(sessions, newer_id)
    assert (old.state, newer.state, newer.next_attempt_at) == (
        OutboxState.DONE,
        OutboxState.PENDING,
        retry_at,
    )


def test_mark_done_refuses_an_entry_nobody_claimed(sessions: sessionmaker[Session]) -> None:
    (entry_id,) = _enqueue(sessions, PLAN)
    with pytest.raises(OutboxStateError) as raised, unit_of_work(sessions) as session:
        Outbox(session).mark_done(entry_id)
    assert raised.value.state is OutboxState.PENDING


def test_abandoned_claims_are_released_to_pending(sessions: sessionmaker[Session]) -> None:
    (entry_id,) = _enqueue(sessions, PLAN)
    _claim(sessions, at=T0)
    with unit_of_work(sessions) as session:
        released = Outbox(session).release_stale(
            claimed_before=T0 + timedelta(minutes=15), now=T0 + timedelta(minutes=20)
        )
    entry = _get(sessions, entry_id)
    assert (released, entry.state, entry.claimed_by) == (1, OutboxState.PENDING, None)


def test_counts_cover_every_state(sessions: sessionmaker[Session]) -> None:
    _enqueue(sessions, PLAN, GOAL)
    _claim(sessions, batch_size=1)
    with unit_of_work(sessions) as session:
        counts = Outbox(session).counts()
    assert counts == {
        OutboxState.PENDING: 1,
        OutboxState.IN_FLIGHT: 1,
        OutboxState.DONE: 0,
        OutboxState.DEAD: 0,
    }


def test_next_due_is_none_when_nothing_is_pending(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert Outbox(session).next_due() is None


def test_next_due_is_the_soonest_pending_attempt(sessions: sessionmaker[Session]) -> None:
    _enqueue(sessions, PLAN, at=T0 + timedelta(minutes=5))
    _enqueue(sessions, GOAL, at=T0)

    with sessions() as session:
        assert Outbox(session).next_due() == T0


def test_giving_a_claim_back_makes_its_entries_due_at_once_without_counting_the_attempt(
    sessions: sessionmaker[Session],
) -> None:
    _enqueue(sessions, PLAN, GOAL)
    claimed = _claim(sessions, worker="w1")
    later = T0 + timedelta(seconds=30)
    with unit_of_work(sessions) as session:
        released = Outbox(session).release([e.id for e in claimed], worker_id="w1", now=later)
    assert released == 2
    assert [(e.state, e.attempts, e.claimed_by) for e in _claim(sessions, at=later)] == [
        (OutboxState.IN_FLIGHT, 1, "w1"),
        (OutboxState.IN_FLIGHT, 1, "w1"),
    ]


def test_giving_back_leaves_entries_another_worker_holds(sessions: sessionmaker[Session]) -> None:
    _enqueue(sessions, PLAN)
    (entry,) = _claim(sessions, worker="w2")
    with unit_of_work(sessions) as session:
        assert Outbox(session).release([entry.id], worker_id="w1") == 0
        assert [e.id for e in Outbox(session).held([entry.id], worker_id="w2")] == [entry.id]
    assert _get(sessions, entry.id).state is OutboxState.IN_FLIGHT


def test_waiting_names_the_targets_with_a_push_pending_or_under_way(
    sessions: sessionmaker[Session],
) -> None:
    _enqueue(sessions, PLAN)
    _enqueue(sessions, GOAL, at=T0 + timedelta(seconds=1))
    (plan,) = _claim(sessions, batch_size=1)
    with unit_of_work(sessions) as session:
        Outbox(session).mark_done(plan.id)
        assert Outbox(session).waiting([PLAN, GOAL, TASK]) == {GOAL}


def test_a_deferred_entry_is_woken_when_a_record_it_waits_for_is_pushed(
    sessions: sessionmaker[Session],
) -> None:
    _enqueue(sessions, TASK)
    (task,) = _claim(sessions)
    with unit_of_work(sessions) as session:
        outbox = Outbox(session)
        outbox.defer(
            task.id, waiting_for=[PLAN], since=T0, retry_at=T0 + timedelta(hours=1), now=T0
        )
        assert outbox.wake([GOAL], now=T0) == 0
        assert outbox.wake([PLAN], now=T0 + timedelta(seconds=5)) == 1
    assert _get(sessions, task.id).next_attempt_at == T0 + timedelta(seconds=5)


def test_a_deferred_entry_remembers_since_when_it_waits(sessions: sessionmaker[Session]) -> None:
    _enqueue(sessions, TASK)
    (task,) = _claim(sessions)
    with unit_of_work(sessions) as session:
        Outbox(session).defer(task.id, waiting_for=[PLAN], since=T0, retry_at=T0, now=T0)
    (again,) = _claim(sessions, at=T0 + timedelta(minutes=1))
    assert waiting_since(again) == T0
    assert again.last_error is not None
    assert "care_plan/plan-1" in again.last_error
