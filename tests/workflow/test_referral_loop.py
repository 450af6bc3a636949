"""A referral's loop closes end to end against a real FHIR server: sent through the API,
pushed by the worker, worked by the performer on the server, pulled back, and followed up."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fhirbridge.domain import AchievementStatus, ReferralStatus, TaskPriority, TaskStatus
from fhirbridge.persistence import EntityKind
from fhirbridge.sync.pull import InboundOutcome
from tests.workflow.conftest import FOLLOW_UP_DAYS, ReferralLoop, fixture_json, performer_steps

pytestmark = pytest.mark.integration

REFERRAL = EntityKind.REFERRAL
GOAL = EntityKind.GOAL
PATIENT = "pat-north-1"


def _sent(loop: ReferralLoop) -> tuple[str, str]:
    """A goal and a referral serving it, both on the server; returns their ids."""
    goal = loop.post("/goals", fixture_json("loop_goal.json"))
    referral = loop.send_referral(goal_id=goal["id"])
    loop.drain()
    return goal["id"], referral["id"]


def _completed(loop: ReferralLoop) -> tuple[str, str]:
    goal_id, referral_id = _sent(loop)
    loop.perform(referral_id, performer_steps("fulfilment"))
    loop.pull()
    return goal_id, referral_id


def test_the_sent_referral_reaches_the_server_as_order_and_task(loop: ReferralLoop) -> None:
    _, referral_id = _sent(loop)
    order = loop.server_copy(REFERRAL, referral_id, "ServiceRequest")
    task = loop.server_copy(REFERRAL, referral_id, "Task")
    assert (order["status"], task["status"]) == ("active", "requested")
    assert task["focus"]["reference"] == f"ServiceRequest/{order['id']}"


def test_a_completed_task_completes_the_referral(loop: ReferralLoop) -> None:
    _, referral_id = _completed(loop)
    referral = loop.record(REFERRAL, referral_id)
    assert (referral.task_status, referral.status) == (
        TaskStatus.COMPLETED,
        ReferralStatus.COMPLETED,
    )


def test_the_completed_order_is_pushed_to_the_server(loop: ReferralLoop) -> None:
    _, referral_id = _completed(loop)
    loop.drain()
    assert loop.server_copy(REFERRAL, referral_id, "ServiceRequest")["status"] == "completed"


def test_the_performers_task_is_not_pushed_back(loop: ReferralLoop) -> None:
    _, referral_id = _completed(loop)
    waiting = {(t.local_id, t.resource_type) for t in loop.waiting()}
    assert (referral_id, "ServiceRequest") in waiting
    assert (referral_id, "Task") not in waiting


def test_the_goal_of_a_met_social_need_is_achieved_and_pushed(loop: ReferralLoop) -> None:
    goal_id, _ = _completed(loop)
    loop.drain()
    assert loop.record(GOAL, goal_id).achievement_status is AchievementStatus.ACHIEVED
    server_goal = loop.server_copy(GOAL, goal_id, "Goal")
    codes = [c["code"] for c in server_goal["achievementStatus"]["coding"]]
    assert codes == ["achieved"]


def test_the_care_manager_gets_a_follow_up_task(loop: ReferralLoop) -> None:
    _completed(loop)
    (task,) = loop.follow_ups(PATIENT)
    today = loop.clock.now.date()
    assert (task.owner_id, task.priority, task.due_end) == (
        "cm-north",
        TaskPriority.ROUTINE,
        today + timedelta(days=FOLLOW_UP_DAYS),
    )


def test_the_follow_up_task_is_pushed(loop: ReferralLoop) -> None:
    _completed(loop)
    (task,) = loop.follow_ups(PATIENT)
    loop.drain()
    assert loop.server_copy(EntityKind.CARE_TASK, task.id, "Task")["status"] == "requested"


def test_a_rejection_without_reason_is_recorded_not_applied(loop: ReferralLoop) -> None:
    _, referral_id = _sent(loop)
    loop.perform(referral_id, performer_steps("rejection_without_reason"))

    report = loop.pull()

    (result,) = [r for r in report.results if r.target and r.target.local_id == referral_id]
    assert result.outcome is InboundOutcome.INVALID_TRANSITION
    assert loop.record(REFERRAL, referral_id).task_status is TaskStatus.REQUESTED
    assert loop.follow_ups(PATIENT) == []


def test_a_rejection_asks_the_care_manager_to_find_another_provider(loop: ReferralLoop) -> None:
    _, referral_id = _sent(loop)
    loop.perform(referral_id, performer_steps("rejection"))

    loop.pull()

    referral = loop.record(REFERRAL, referral_id)
    (task,) = loop.follow_ups(PATIENT)
    assert (referral.task_status, referral.status) == (TaskStatus.REJECTED, ReferralStatus.ACTIVE)
    assert (task.description, task.priority) == (
        "referral rejected: find another provider",
        TaskPriority.URGENT,
    )


def test_a_rejection_leaves_the_goal_as_it_was(loop: ReferralLoop) -> None:
    goal_id, referral_id = _sent(loop)
    loop.perform(referral_id, performer_steps("rejection"))

    loop.pull()

    assert loop.record(GOAL, goal_id).achievement_status is None


def test_the_timeline_shows_the_performers_moves_after_the_sending(loop: ReferralLoop) -> None:
    _, referral_id = _completed(loop)
    response = loop.api.get(f"/referrals/{referral_id}/timeline", headers=loop.headers)
    events = [(e["action"], e["actor"], e["after"]["task_status"]) for e in response.json()]
    assert events[0][0] == "sent"
    assert events[-1] == ("performer moved", "Eastside Community Food Bank", "completed")
