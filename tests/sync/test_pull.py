"""Pulling changes other systems made on a real FHIR server into our records."""

from __future__ import annotations

import dataclasses

import pytest

from fhirbridge.domain import Code, TaskStatus
from fhirbridge.persistence import (
    ConflictReason,
    ConflictState,
    EntityKind,
    OutboxState,
    Store,
    unit_of_work,
)
from fhirbridge.sync.pull import InboundOutcome
from tests.sync.conftest import SyncWorld, fulfil, performer_updates

pytestmark = pytest.mark.integration

REFERRAL = EntityKind.REFERRAL
CARE_PLAN = EntityKind.CARE_PLAN
CARE_TASK = EntityKind.CARE_TASK
FOOD = "r-1001-food"
WAITING = (OutboxState.PENDING, OutboxState.IN_FLIGHT)


def _ours(report_results: list, outcome: InboundOutcome) -> list:
    return [r for r in report_results if r.outcome is outcome]


# -- the performer works the referral ----------------------------------------------------


@pytest.mark.parametrize("sync_world", ["sqlite", "postgresql"], indirect=True)
def test_performer_fulfilment_is_applied_to_the_referral(sync_world: SyncWorld) -> None:
    fulfil(sync_world, performer_updates()["fulfilment"])

    sync_world.pull("Task", "ServiceRequest")

    referral = sync_world.record(REFERRAL, FOOD)
    assert referral.task_status is TaskStatus.COMPLETED
    assert referral.outcomes == [Code("snomed", "710925007", "Provision of food")]
    assert referral.task_owner_reference == "Organization/cbo-foodbank-7"


def test_performer_fulfilment_creates_no_outbox_entry(sync_world: SyncWorld) -> None:
    fulfil(sync_world, performer_updates()["fulfilment"])

    sync_world.pull("Task", "ServiceRequest")

    assert sync_world.outbox(*WAITING) == []


def test_performer_fulfilment_leaves_the_service_request_untouched(sync_world: SyncWorld) -> None:
    before = sync_world.server_copy(REFERRAL, FOOD, "ServiceRequest")
    fulfil(sync_world, performer_updates()["fulfilment"])

    sync_world.pull("Task", "ServiceRequest")

    assert sync_world.server_copy(REFERRAL, FOOD, "ServiceRequest") == before
    assert (
        sync_world.link(REFERRAL, FOOD, "ServiceRequest").version_id == before["meta"]["versionId"]
    )


def test_pulled_version_becomes_the_base_of_the_next_push(sync_world: SyncWorld) -> None:
    completed = fulfil(sync_world, performer_updates()["fulfilment"])

    sync_world.pull("Task")

    link = sync_world.link(REFERRAL, FOOD, "Task")
    assert link.version_id == completed["meta"]["versionId"]
    assert link.server_json == completed


def test_steps_between_two_pulls_are_checked_one_by_one_from_history(
    sync_world: SyncWorld,
) -> None:
    # requested -> completed is no single allowed step; the server's history shows the path.
    fulfil(sync_world, performer_updates()["fulfilment"])

    report = sync_world.pull("Task")

    (result,) = [r for r in report.results if r.target and r.target.local_id == FOOD]
    assert result.outcome is InboundOutcome.APPLIED
    assert "task_status" in result.applied


# -- transitions the state machine forbids -----------------------------------------------


def test_reopening_a_completed_referral_task_is_recorded_not_applied(
    sync_world: SyncWorld,
) -> None:
    updates = performer_updates()
    fulfil(sync_world, updates["fulfilment"])
    sync_world.pull("Task")
    reopened = fulfil(sync_world, [updates["reopen"]])

    report = sync_world.pull("Task")

    assert sync_world.record(REFERRAL, FOOD).task_status is TaskStatus.COMPLETED
    (result,) = _ours(report.results, InboundOutcome.INVALID_TRANSITION)
    with unit_of_work(sync_world.sessions) as session:
        conflict = Store(session).conflicts.get(result.conflict_id)
    assert conflict is not None
    assert (conflict.reason, conflict.state) == (
        ConflictReason.INVALID_TRANSITION.value,
        ConflictState.OPEN,
    )
    assert conflict.remote == reopened
    assert conflict.local["status"] == "completed"


def test_a_jump_with_no_allowed_path_is_recorded_not_applied(sync_world: SyncWorld) -> None:
    fulfil(sync_world, [performer_updates()["jump_to_completed"]])

    report = sync_world.pull("Task")

    assert sync_world.record(REFERRAL, FOOD).task_status is TaskStatus.REQUESTED
    assert [
        r.target.local_id for r in _ours(report.results, InboundOutcome.INVALID_TRANSITION)
    ] == [FOOD]


def test_an_invalid_transition_does_not_move_the_link(sync_world: SyncWorld) -> None:
    before = sync_world.link(REFERRAL, FOOD, "Task").version_id
    fulfil(sync_world, [performer_updates()["jump_to_completed"]])

    sync_world.pull("Task")

    assert sync_world.link(REFERRAL, FOOD, "Task").version_id == before


# -- fields fhirbridge owns --------------------------------------------------------------


def _change_title_locally(world: SyncWorld, plan_id: str, title: str) -> None:
    with unit_of_work(world.sessions) as session:
        store = Store(session)
        plan = store.care_plans.require(plan_id)
        plan.title = title
        store.save(plan)


@pytest.mark.parametrize("sync_world", ["sqlite", "postgresql"], indirect=True)
def test_server_edit_of_a_field_we_also_changed_is_a_conflict(sync_world: SyncWorld) -> None:
    _change_title_locally(sync_world, "cp-1001", "Local title")
    remote = sync_world.edit(CARE_PLAN, "cp-1001", "CarePlan", {"title": "Server title"})

    report = sync_world.pull("CarePlan")

    (result,) = _ours(report.results, InboundOutcome.CONFLICT)
    assert result.disputed == ("title",)
    with unit_of_work(sync_world.sessions) as session:
        conflict = Store(session).conflicts.get(result.conflict_id)
    assert conflict is not None
    assert conflict.reason == ConflictReason.CONCURRENT_EDIT.value
    assert conflict.fields == ["title"]
    assert conflict.local["title"] == "Local title"
    assert conflict.remote == remote
    assert conflict.remote_version == remote["meta"]["versionId"]


def test_server_edit_of_a_field_we_also_changed_does_not_overwrite_ours(
    sync_world: SyncWorld,
) -> None:
    _change_title_locally(sync_world, "cp-1001", "Local title")
    link_before = sync_world.link(CARE_PLAN, "cp-1001", "CarePlan")
    sync_world.edit(CARE_PLAN, "cp-1001", "CarePlan", {"title": "Server title"})

    sync_world.pull("CarePlan")

    assert sync_world.record(CARE_PLAN, "cp-1001").title == "Local title"
    # The pending push stays based on the old version: the server refuses it (412) rather
    # than letting it overwrite the other system's title.
    assert sync_world.link(CARE_PLAN, "cp-1001", "CarePlan").version_id == link_before.version_id


def test_server_edit_with_no_local_change_is_applied(sync_world: SyncWorld) -> None:
    remote = sync_world.edit(CARE_PLAN, "cp-1001", "CarePlan", {"title": "Server title"})

    report = sync_world.pull("CarePlan")

    assert sync_world.record(CARE_PLAN, "cp-1001").title == "Server title"
    assert [r.applied for r in report.applied] == [("title",)]
    assert (
        sync_world.link(CARE_PLAN, "cp-1001", "CarePlan").version_id
        == (remote["meta"]["versionId"])
    )
    assert sync_world.outbox(*WAITING) == []


def test_server_edit_of_another_field_merges_with_our_pending_change(
    sync_world: SyncWorld,
) -> None:
    # With the server copy of our last sync on the link (as the push worker keeps it), a field
    # only the server changed is no dispute even while our own change waits to be pushed.
    synced = sync_world.server_copy(CARE_PLAN, "cp-1001", "CarePlan")
    link = sync_world.link(CARE_PLAN, "cp-1001", "CarePlan")
    with unit_of_work(sync_world.sessions) as session:
        Store(session).fhir_links.upsert(dataclasses.replace(link, server_json=synced))
    _change_title_locally(sync_world, "cp-1001", "Local title")
    sync_world.edit(CARE_PLAN, "cp-1001", "CarePlan", {"status": "on-hold"})

    report = sync_world.pull("CarePlan")

    plan = sync_world.record(CARE_PLAN, "cp-1001")
    assert (plan.title, plan.status.value) == ("Local title", "on-hold")
    assert [r.applied for r in report.applied] == [("status",)]


# -- echoes, cursor and paging -----------------------------------------------------------


def test_our_own_writes_coming_back_are_no_ops(sync_world: SyncWorld) -> None:
    report = sync_world.pull("CarePlan", "Task", "ServiceRequest")

    echoes = _ours(report.results, InboundOutcome.ECHO)
    assert len(echoes) == 3 + 6 + 2  # plans; care tasks and referral Tasks; orders
    assert report.applied == []
    assert report.conflict_ids == []
    assert sync_world.outbox(*WAITING) == []


def test_the_cursor_advances_so_a_second_pull_fetches_nothing(sync_world: SyncWorld) -> None:
    sync_world.edit(CARE_PLAN, "cp-1002", "CarePlan", {"title": "Server title"})
    first = sync_world.pull("CarePlan")

    second = sync_world.pull("CarePlan")

    assert first.fetched > 0
    assert second.fetched == 0
    assert second.cursors["CarePlan"] == first.cursors["CarePlan"]


def test_paging_two_at_a_time_applies_every_change(sync_world: SyncWorld) -> None:
    sync_world.pull("CarePlan", "Task")  # catch up with everything already on the server
    titles = performer_updates()["care_plan_titles"]
    for plan_id, title in titles.items():
        sync_world.edit(CARE_PLAN, plan_id, "CarePlan", {"title": title})
    tasks = ["t-1001-oct-call", "t-1001-medrev", "t-1002-edu", "t-1003-outreach"]
    for task_id in tasks:
        sync_world.edit(CARE_TASK, task_id, "Task", {"description": f"Reviewed: {task_id}"})

    report = sync_world.pull("CarePlan", "Task", page_size=2)

    assert report.pages == 2 + 2
    assert sorted(r.target.local_id for r in report.applied) == sorted([*titles, *tasks])
    assert {p: sync_world.record(CARE_PLAN, p).title for p in titles} == titles
    assert sync_world.pull("CarePlan", "Task", page_size=2).fetched == 0


def test_the_cursor_is_the_newest_last_updated_seen(sync_world: SyncWorld) -> None:
    sync_world.pull("CarePlan")
    newest = sync_world.edit(CARE_PLAN, "cp-1003", "CarePlan", {"title": "Server title"})

    report = sync_world.pull("CarePlan", page_size=2)

    assert report.cursors["CarePlan"] == newest["meta"]["lastUpdated"]
