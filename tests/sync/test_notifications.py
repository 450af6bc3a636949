"""Subscription notifications (R4 backport) are read strictly and applied like a pull."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from fhirbridge.domain import TaskStatus
from fhirbridge.fhir import FhirClient
from fhirbridge.persistence import EntityKind
from fhirbridge.sync.notifications import (
    MalformedNotification,
    NotificationReport,
    NotificationType,
    apply_notification,
    parse_notification,
)
from fhirbridge.sync.pull import InboundOutcome
from tests.sync.conftest import (
    REFERRAL_GUARDS,
    SYNC_FIXTURES,
    SyncWorld,
    notification_fixture,
    now,
    performer_updates,
)

MALFORMED = sorted((SYNC_FIXTURES / "notifications" / "malformed").glob("*.json"))


def test_a_handshake_asks_for_nothing() -> None:
    notification = parse_notification(notification_fixture("handshake.json"))

    assert notification.type is NotificationType.HANDSHAKE
    assert (notification.references, notification.resources) == ([], [])
    assert notification.events_since_start == 0


def test_a_heartbeat_carries_the_event_count_in_camel_case_too() -> None:
    notification = parse_notification(notification_fixture("heartbeat.json"))

    assert notification.type is NotificationType.HEARTBEAT
    assert notification.events_since_start == 12
    assert notification.subscription == "http://127.0.0.1/fhir/Subscription/sub-7"


def test_an_id_only_event_names_the_resources_to_read() -> None:
    notification = parse_notification(notification_fixture("event-id-only.json"))

    assert notification.type is NotificationType.EVENT_NOTIFICATION
    assert notification.references == ["http://127.0.0.1/fhir/Task/cbo-task-19", "Task/cbo-task-20"]
    assert [e.number for e in notification.events] == [13, 14]
    assert notification.resources == []


def test_a_full_resource_event_carries_the_resource_itself() -> None:
    bundle = notification_fixture("event-full-resource.json")

    notification = parse_notification(bundle)

    assert notification.references == []
    assert notification.resources == [bundle["entry"][1]["resource"]]


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_a_malformed_bundle_is_refused_with_where(path: Any) -> None:
    with pytest.raises(MalformedNotification) as caught:
        parse_notification(json.loads(path.read_text()))

    assert caught.value.where


def test_something_other_than_a_bundle_is_refused() -> None:
    with pytest.raises(MalformedNotification, match="not a Bundle"):
        parse_notification({"resourceType": "Parameters"})


# -- applying ----------------------------------------------------------------------------


def _apply(world: SyncWorld, bundle: dict[str, Any]) -> NotificationReport:
    async def go() -> NotificationReport:
        async with FhirClient(world.base_url, max_retries=0) as client:
            return await apply_notification(
                bundle,
                client=client,
                sessions=world.sessions,
                mappings=world.mappings,
                identifier_system=world.system,
                now=now,
                hooks=REFERRAL_GUARDS,
            )

    return anyio.run(go)


def _about(bundle: dict[str, Any], focus: str) -> dict[str, Any]:
    """The id-only fixture, its first event pointing at ``focus`` and the second dropped."""
    status = bundle["entry"][0]["resource"]
    events = [p for p in status["parameter"] if p["name"] == "notification-event"]
    status["parameter"] = [p for p in status["parameter"] if p not in events[1:]]
    events[0]["part"][2]["valueReference"]["reference"] = focus
    bundle["entry"] = bundle["entry"][:1]
    return bundle


@pytest.mark.integration
def test_an_id_only_event_is_read_from_the_server_and_applied(sync_world: SyncWorld) -> None:
    accepted = sync_world.edit(EntityKind.REFERRAL, "r-1001-food", "Task", {"status": "accepted"})
    bundle = _about(
        notification_fixture("event-id-only.json"), f"{sync_world.base_url}/Task/{accepted['id']}"
    )

    report = _apply(sync_world, bundle)

    assert [r.outcome for r in report.results] == [InboundOutcome.APPLIED]
    assert sync_world.record(EntityKind.REFERRAL, "r-1001-food").task_status is (
        TaskStatus.ACCEPTED
    )


@pytest.mark.integration
def test_a_notified_move_the_guards_refuse_is_not_applied(sync_world: SyncWorld) -> None:
    jumped = sync_world.edit(
        EntityKind.REFERRAL, "r-1001-food", "Task", performer_updates()["jump_to_completed"]
    )
    bundle = _about(notification_fixture("event-id-only.json"), f"Task/{jumped['id']}")

    report = _apply(sync_world, bundle)

    assert [r.outcome for r in report.results] == [InboundOutcome.INVALID_TRANSITION]
    assert sync_world.record(EntityKind.REFERRAL, "r-1001-food").task_status is (
        TaskStatus.REQUESTED
    )


@pytest.mark.integration
def test_a_full_resource_event_is_applied_without_reading(sync_world: SyncWorld) -> None:
    accepted = sync_world.edit(EntityKind.REFERRAL, "r-1001-food", "Task", {"status": "accepted"})
    bundle = notification_fixture("event-full-resource.json")
    bundle["entry"][1]["resource"] = accepted
    status = bundle["entry"][0]["resource"]["parameter"]
    status[-1]["part"][2]["valueReference"]["reference"] = f"Task/{accepted['id']}"

    report = _apply(sync_world, bundle)

    assert [r.outcome for r in report.results] == [InboundOutcome.APPLIED]


@pytest.mark.integration
def test_a_notification_of_our_own_write_is_an_echo(sync_world: SyncWorld) -> None:
    ours = sync_world.server_copy(EntityKind.REFERRAL, "r-1001-food", "Task")
    bundle = _about(notification_fixture("event-id-only.json"), f"Task/{ours['id']}")

    report = _apply(sync_world, bundle)

    assert [r.outcome for r in report.results] == [InboundOutcome.ECHO]


@pytest.mark.integration
def test_a_late_notification_of_an_older_version_is_stale(sync_world: SyncWorld) -> None:
    older = sync_world.server_copy(EntityKind.REFERRAL, "r-1001-food", "Task")
    sync_world.edit(EntityKind.REFERRAL, "r-1001-food", "Task", {"status": "accepted"})
    sync_world.pull("Task")
    bundle = notification_fixture("event-full-resource.json")
    bundle["entry"][1]["resource"] = older
    status = bundle["entry"][0]["resource"]["parameter"]
    status[-1]["part"][2]["valueReference"]["reference"] = f"Task/{older['id']}"

    report = _apply(sync_world, bundle)

    assert [r.outcome for r in report.results] == [InboundOutcome.STALE]
    assert sync_world.record(EntityKind.REFERRAL, "r-1001-food").task_status is (
        TaskStatus.ACCEPTED
    )


@pytest.mark.integration
def test_a_focus_on_another_server_is_not_followed(sync_world: SyncWorld) -> None:
    bundle = _about(
        notification_fixture("event-id-only.json"), "https://elsewhere.test/fhir/Task/9"
    )

    report = _apply(sync_world, bundle)

    assert report.foreign == ["https://elsewhere.test/fhir/Task/9"]
    assert report.results == []


@pytest.mark.integration
def test_a_heartbeat_changes_nothing(sync_world: SyncWorld) -> None:
    report = _apply(sync_world, notification_fixture("heartbeat.json"))

    assert report.results == []
