"""The referral service's inbound guard on its own: which performer moves of a referral's
tracker the pull may apply, with the server's path between two pulls and without one."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest

from fhirbridge.domain import Referral, ReferralStatus, TaskStatus
from fhirbridge.persistence import Store
from fhirbridge.services.referral import ReferralTransitionGuard
from fhirbridge.sync.pull import InboundChange

REQUESTED = Referral(id="ref-1", status=ReferralStatus.ACTIVE, task_status=TaskStatus.REQUESTED)
GUARD = ReferralTransitionGuard()


def _at(record: Referral, status: TaskStatus, reason: str | None = None) -> Referral:
    return dataclasses.replace(record, task_status=status, task_status_reason=reason)


def _refusal(before: Referral, after: Referral, path: tuple[Any, ...] | None = ()) -> str | None:
    change = InboundChange(cast(Store, None), before, after, {}, ("task_status",), path)
    return GUARD.refusal(change)


def test_one_allowed_step_needs_no_path() -> None:
    after = _at(REQUESTED, TaskStatus.ACCEPTED)

    assert not GUARD.wants_path(REQUESTED, after)
    assert _refusal(REQUESTED, after) is None


def test_a_jump_asks_for_the_path_between() -> None:
    assert GUARD.wants_path(REQUESTED, _at(REQUESTED, TaskStatus.COMPLETED))


def test_a_jump_is_applied_when_the_path_shows_every_step() -> None:
    path = (_at(REQUESTED, TaskStatus.ACCEPTED), _at(REQUESTED, TaskStatus.IN_PROGRESS))

    assert _refusal(REQUESTED, _at(REQUESTED, TaskStatus.COMPLETED), path) is None


def test_a_jump_the_path_shows_as_one_step_is_refused() -> None:
    refused = _refusal(REQUESTED, _at(REQUESTED, TaskStatus.COMPLETED), path=())

    assert refused is not None
    assert "requested -> completed" in refused


def test_a_path_with_a_forbidden_step_is_refused() -> None:
    path = (_at(REQUESTED, TaskStatus.ACCEPTED),)  # accepted -> completed skips in-progress

    assert _refusal(REQUESTED, _at(REQUESTED, TaskStatus.COMPLETED), path) is not None


@pytest.mark.parametrize(
    "target", [TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED], ids=lambda s: s.value
)
def test_without_history_a_forward_jump_the_performer_may_walk_is_applied(
    target: TaskStatus,
) -> None:
    assert _refusal(REQUESTED, _at(REQUESTED, target), path=None) is None


def test_without_history_a_failure_with_its_reason_is_applied() -> None:
    failed = _at(REQUESTED, TaskStatus.FAILED, "Patient moved away")

    assert _refusal(REQUESTED, failed, path=None) is None


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (_at(REQUESTED, TaskStatus.COMPLETED), _at(REQUESTED, TaskStatus.REQUESTED)),
        (REQUESTED, _at(REQUESTED, TaskStatus.FAILED)),  # no reason given
        (_at(REQUESTED, TaskStatus.IN_PROGRESS), _at(REQUESTED, TaskStatus.REJECTED, "Full")),
        (REQUESTED, _at(REQUESTED, TaskStatus.READY)),  # not a performer's status
    ],
    ids=["reopen", "failure-without-reason", "rejection-after-start", "ready"],
)
def test_without_history_a_jump_no_performer_path_reaches_is_refused(
    before: Referral, after: Referral
) -> None:
    assert _refusal(before, after, path=None) is not None


def test_records_other_than_referrals_pass() -> None:
    assert _refusal(cast(Referral, object()), cast(Referral, object()), path=None) is None
