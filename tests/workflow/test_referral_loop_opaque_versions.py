"""The referral loop closes on a server whose version ids are UUIDs: the food bank accepts,
starts and completes the Task between two pulls, and the path is read from the server's
history by version id, never by counting versions."""

from __future__ import annotations

import pytest

from fhirbridge.domain import AchievementStatus, ReferralStatus, TaskPriority
from fhirbridge.persistence import EntityKind
from fhirbridge.sync.pull import InboundOutcome, PullReport
from tests.workflow.conftest import ReferralLoop, fixture_json, performer_steps

pytestmark = pytest.mark.integration

PATIENT = "pat-north-1"


def _fulfilled_between_two_pulls(loop: ReferralLoop) -> tuple[str, str, PullReport]:
    goal = loop.post("/goals", fixture_json("loop_goal.json"))
    referral = loop.send_referral(goal_id=goal["id"])
    loop.drain()
    loop.perform(referral["id"], performer_steps("fulfilment"))
    return goal["id"], referral["id"], loop.pull()


def test_the_server_gives_version_ids_that_are_not_numbers(opaque_loop: ReferralLoop) -> None:
    referral = opaque_loop.send_referral()
    opaque_loop.drain()

    version = opaque_loop.server_copy(EntityKind.REFERRAL, referral["id"], "Task")["meta"]
    assert not version["versionId"].isdigit()


def test_the_fulfilment_is_applied_not_refused(opaque_loop: ReferralLoop) -> None:
    _, referral_id, report = _fulfilled_between_two_pulls(opaque_loop)

    (result,) = [r for r in report.results if r.target and r.target.local_id == referral_id]
    assert result.outcome is InboundOutcome.APPLIED


def test_the_order_is_completed(opaque_loop: ReferralLoop) -> None:
    _, referral_id, _ = _fulfilled_between_two_pulls(opaque_loop)
    opaque_loop.drain()

    assert opaque_loop.record(EntityKind.REFERRAL, referral_id).status is ReferralStatus.COMPLETED
    order = opaque_loop.server_copy(EntityKind.REFERRAL, referral_id, "ServiceRequest")
    assert order["status"] == "completed"


def test_the_goal_is_achieved(opaque_loop: ReferralLoop) -> None:
    goal_id, _, _ = _fulfilled_between_two_pulls(opaque_loop)

    goal = opaque_loop.record(EntityKind.GOAL, goal_id)
    assert goal.achievement_status is AchievementStatus.ACHIEVED


def test_the_care_manager_gets_a_follow_up_task(opaque_loop: ReferralLoop) -> None:
    _fulfilled_between_two_pulls(opaque_loop)

    (task,) = opaque_loop.follow_ups(PATIENT)
    assert (task.owner_id, task.priority) == ("cm-north", TaskPriority.ROUTINE)
