"""``close_referral_loop`` on its own: which inbound tracker changes close the loop and how the
linked goal is judged (the end-to-end tests cover the server round trip)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from fhirbridge.domain import (
    AchievementStatus,
    CareTask,
    Code,
    Goal,
    GoalLifecycle,
    Referral,
    ReferralKind,
    ReferralStatus,
    TaskStatus,
)
from fhirbridge.persistence import (
    OutboxState,
    Store,
    make_engine,
    unit_of_work,
)
from fhirbridge.persistence.scratch import scratch_database
from fhirbridge.services.referral import LoopClosed, LoopPolicy, close_referral_loop
from tests.api.support import load_caseload
from tests.sessions import session_factory

NOW = datetime(2026, 10, 15, 15, 0, tzinfo=UTC)
PROVISION_OF_FOOD = Code("snomed", "710925007", "Provision of food")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with scratch_database("sqlite", workdir=tmp_path) as url:
        load_caseload(url)
        engine = make_engine(url)
        try:
            with unit_of_work(session_factory(engine)) as session:
                yield Store(session)
        finally:
            engine.dispose()


def _referral(store: Store, kind: ReferralKind, goal: GoalLifecycle) -> Referral:
    """A goal and a referral serving it, both as last synced (no outbox entries)."""
    store.goals.save(Goal(id="goal-1", patient_id="pat-north-1", lifecycle_status=goal))
    referral = Referral(
        id="ref-1",
        status=ReferralStatus.ACTIVE,
        patient_id="pat-north-1",
        kind=kind,
        service=PROVISION_OF_FOOD,
        requester_id="cm-north",
        goal_id="goal-1",
        task_status=TaskStatus.IN_PROGRESS,
    )
    store.referrals.save(referral)
    return referral


def _queued(store: Store) -> set[tuple[str, str]]:
    return {(e.local_id, e.resource_type) for e in store.outbox.in_state(OutboxState.PENDING)}


def _close(store: Store, before: Referral, **changes: Any) -> LoopClosed | None:
    after = dataclasses.replace(before, **changes)
    return close_referral_loop(
        store=store, before=before, after=after, now=NOW, policy=LoopPolicy()
    )


def test_a_completed_specialist_referral_leaves_the_goal_in_progress(store: Store) -> None:
    before = _referral(store, ReferralKind.SPECIALIST, GoalLifecycle.ACTIVE)
    _close(store, before, task_status=TaskStatus.COMPLETED, outcomes=[PROVISION_OF_FOOD])
    assert store.goals.require("goal-1").achievement_status is AchievementStatus.IN_PROGRESS


def test_a_social_need_completed_without_reported_activity_leaves_the_goal_in_progress(
    store: Store,
) -> None:
    before = _referral(store, ReferralKind.SOCIAL_NEED, GoalLifecycle.ACTIVE)
    _close(store, before, task_status=TaskStatus.COMPLETED)
    assert store.goals.require("goal-1").achievement_status is AchievementStatus.IN_PROGRESS


def test_a_social_need_met_with_reported_activity_achieves_the_goal(store: Store) -> None:
    before = _referral(store, ReferralKind.SOCIAL_NEED, GoalLifecycle.ACTIVE)
    closed = _close(store, before, task_status=TaskStatus.COMPLETED, outcomes=[PROVISION_OF_FOOD])
    assert closed is not None
    assert (closed.goal_id, closed.goal_achievement) == ("goal-1", AchievementStatus.ACHIEVED)


def test_a_goal_already_closed_is_left_alone(store: Store) -> None:
    before = _referral(store, ReferralKind.SOCIAL_NEED, GoalLifecycle.CANCELLED)
    _close(store, before, task_status=TaskStatus.COMPLETED, outcomes=[PROVISION_OF_FOOD])
    assert store.goals.require("goal-1").achievement_status is None


def test_a_completion_queues_the_order_goal_and_follow_up_for_pushing(store: Store) -> None:
    before = _referral(store, ReferralKind.SOCIAL_NEED, GoalLifecycle.ACTIVE)
    waiting = _queued(store)  # the caseload as loaded
    closed = _close(store, before, task_status=TaskStatus.COMPLETED, outcomes=[PROVISION_OF_FOOD])
    assert closed is not None
    assert _queued(store) - waiting == {
        ("ref-1", "ServiceRequest"),
        ("goal-1", "Goal"),
        (closed.follow_up_task_id, "Task"),
    }


def test_a_failed_referral_asks_for_another_provider(store: Store) -> None:
    before = _referral(store, ReferralKind.SOCIAL_NEED, GoalLifecycle.ACTIVE)
    closed = _close(
        store, before, task_status=TaskStatus.FAILED, task_status_reason="Closed for repairs"
    )
    assert closed is not None
    task: CareTask = store.care_tasks.require(closed.follow_up_task_id)
    assert (task.description, task.due_end) == (
        "referral failed: find another provider",
        date(2026, 10, 22),
    )


def test_a_step_that_closes_nothing_does_nothing(store: Store) -> None:
    before = _referral(store, ReferralKind.SOCIAL_NEED, GoalLifecycle.ACTIVE)
    before = dataclasses.replace(before, task_status=TaskStatus.ACCEPTED)
    assert _close(store, before, task_status=TaskStatus.IN_PROGRESS) is None
    assert store.care_tasks.list_for_patient("pat-north-1") == []


def test_a_change_that_leaves_the_status_alone_does_nothing(store: Store) -> None:
    before = _referral(store, ReferralKind.SOCIAL_NEED, GoalLifecycle.ACTIVE)
    assert _close(store, before, task_owner_reference="Organization/cbo-foodbank-7") is None


def test_records_other_than_referrals_are_ignored(store: Store) -> None:
    goal = Goal(id="goal-2", patient_id="pat-north-1", lifecycle_status=GoalLifecycle.ACTIVE)
    done = dataclasses.replace(goal, lifecycle_status=GoalLifecycle.COMPLETED)
    assert (
        close_referral_loop(store=store, before=goal, after=done, now=NOW, policy=LoopPolicy())
        is None
    )
