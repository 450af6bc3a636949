"""After start-up, fhirbridge's processes keep what start-up built out of the collector's sight."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from fhirbridge.collector import ROLL_UP_YOUNG_THRESHOLD, settle_after_startup


@pytest.fixture(autouse=True)
def _restore_the_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_what_exists_at_start_up_is_frozen() -> None:
    gc.unfreeze()
    built_at_start_up = [{"n": n} for n in range(1_000)]

    settle_after_startup()

    assert gc.get_freeze_count() >= len(built_at_start_up)


def test_a_long_running_process_keeps_the_default_thresholds() -> None:
    gc.set_threshold(700, 10, 10)

    settle_after_startup(full=False)

    assert gc.get_threshold() == (700, 10, 10)


def test_a_roll_up_waits_for_many_allocations_before_a_young_pass() -> None:
    gc.set_threshold(700, 10, 10)

    settle_after_startup(young_threshold=ROLL_UP_YOUNG_THRESHOLD)

    assert gc.get_threshold() == (ROLL_UP_YOUNG_THRESHOLD, 10, 10)


def test_a_higher_threshold_set_by_the_operator_is_kept() -> None:
    gc.set_threshold(200_000, 10, 10)

    settle_after_startup(young_threshold=ROLL_UP_YOUNG_THRESHOLD)

    assert gc.get_threshold()[0] == 200_000
