"""How often to pull: an hour by default, never more often than the Gravity IG allows for Task."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fhirbridge.sync.pull import PullIntervalTooShort, PullSchedule

LAST = datetime(2026, 10, 20, 14, 0, tzinfo=UTC)


def test_the_default_interval_is_an_hour() -> None:
    assert PullSchedule().interval == timedelta(minutes=60)


def test_a_pull_that_never_ran_is_due() -> None:
    assert PullSchedule().is_due(last_pull=None, now=LAST)


def test_a_pull_is_not_due_before_the_interval_has_passed() -> None:
    assert not PullSchedule().is_due(last_pull=LAST, now=LAST + timedelta(minutes=59))


def test_a_pull_is_due_once_the_interval_has_passed() -> None:
    assert PullSchedule().is_due(last_pull=LAST, now=LAST + timedelta(minutes=60))


def test_polling_tasks_more_often_than_every_15_minutes_is_refused() -> None:
    with pytest.raises(PullIntervalTooShort, match="at least 15 minutes") as caught:
        PullSchedule(interval=timedelta(minutes=14), resource_types=("CarePlan", "Task"))

    assert caught.value.resource_type == "Task"


def test_polling_tasks_every_15_minutes_is_allowed() -> None:
    schedule = PullSchedule(interval=timedelta(minutes=15), resource_types=("Task",))

    assert schedule.next_pull(LAST) == LAST + timedelta(minutes=15)


def test_other_resource_types_may_be_pulled_more_often() -> None:
    schedule = PullSchedule(interval=timedelta(minutes=5), resource_types=("CarePlan",))

    assert schedule.interval == timedelta(minutes=5)


def test_a_non_positive_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        PullSchedule(interval=timedelta(0))
