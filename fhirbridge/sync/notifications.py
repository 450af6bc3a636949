"""Topic-based subscription notifications (Subscriptions R5 Backport IG, on FHIR R4).

A notification is a ``history`` Bundle whose first entry is a ``Parameters`` resource carrying
the subscription status: ``type`` (handshake, heartbeat, event-notification, query-status,
query-event), ``events-since-subscription-start`` and one ``notification-event`` per event,
whose ``focus`` names the resource that changed. With ``full-resource`` payloads the focus
resources follow as further entries; with ``id-only`` payloads only their references come and
we read each one from the server. Kebab-case and camelCase parameter names are both accepted
(reference implementations differ).

``apply_notification`` runs every focus resource through the same rules as a pull
(``fhirbridge.sync.pull.receive_resources``); it does not move pull cursors, so a missed
notification is still caught by the next pull.

The body comes from outside, so ``parse_notification`` first refuses what no FHIR server sends
and our storage cannot hold: nesting deeper than ``MAX_DEPTH``, and strings with control
characters (FHIR strings allow tab and line breaks only; PostgreSQL refuses NUL). Reasons name
where, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fhirbridge.fhir import FhirClient
from fhirbridge.mapping.loader import Mappings
from fhirbridge.sync.pull import (
    Clock,
    InboundResult,
    PullHooks,
    Sessions,
    receive_resources,
)
from fhirbridge.sync.references import split_reference

__all__ = [
    "MAX_DEPTH",
    "MalformedNotification",
    "Notification",
    "NotificationEvent",
    "NotificationReport",
    "NotificationType",
    "apply_notification",
    "parse_notification",
]


class NotificationType(StrEnum):
    HANDSHAKE = "handshake"
    HEARTBEAT = "heartbeat"
    EVENT_NOTIFICATION = "event-notification"
    QUERY_STATUS = "query-status"
    QUERY_EVENT = "query-event"


class MalformedNotification(ValueError):
    """The body is not a backport notification Bundle; ``where`` names the offending part."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"malformed subscription notification at {where}: {reason}")


@dataclass(frozen=True)
class NotificationEvent:
    number: int | None
    focus: str | None  # reference as sent, often absolute ("http://server/fhir/Task/12")
    resource: dict[str, Any] | None = None  # the focus itself, with full-resource payloads
    timestamp: str | None = None


@dataclass(frozen=True)
class Notification:
    type: NotificationType
    subscription: str | None
    topic: str | None
    status: str | None
    events_since_start: int | None
    events: tuple[NotificationEvent, ...] = ()

    @property
    def resources(self) -> list[dict[str, Any]]:
        """Focus resources included in the Bundle (full-resource payloads)."""
        return [e.resource for e in self.events if e.resource is not None]

    @property
    def references(self) -> list[str]:
        """Focus references whose resource must be read from the server (id-only payloads)."""
        return list(
            dict.fromkeys(
                e.focus for e in self.events if e.resource is None and e.focus is not None
            )
        )


# Deeper than any FHIR resource nests; deep enough JSON exhausts the stack of whatever walks it.
MAX_DEPTH = 64
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_MAX_NAME = 64  # FHIR element names are far shorter
_MAX_COUNT = 2**63 - 1  # integer64, what the backport's counters are
_EVENT_NAMES = ("notification-event", "notificationEvent")
_SINCE_NAMES = ("events-since-subscription-start", "eventsSinceSubscriptionStart")
_NUMBER_NAMES = ("event-number", "eventNumber")


def parse_notification(bundle: Any) -> Notification:
    """Read a notification Bundle; raises ``MalformedNotification`` saying what is wrong."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise MalformedNotification("Bundle", "not a Bundle")
    _check_values(bundle)
    if bundle.get("type") != "history":
        raise MalformedNotification("Bundle.type", "expected history")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], Mapping):
        raise MalformedNotification("Bundle.entry", "no subscription status entry")
    status = entries[0].get("resource")
    if not isinstance(status, Mapping) or status.get("resourceType") != "Parameters":
        raise MalformedNotification("Bundle.entry[0]", "the first entry must be a Parameters")
    parameters = status.get("parameter")
    if not isinstance(parameters, list):
        raise MalformedNotification("Parameters.parameter", "missing")
    values: dict[str, Any] = {}
    raw_events: list[tuple[int, Sequence[Any]]] = []
    for i, parameter in enumerate(parameters):
        if not isinstance(parameter, Mapping) or not isinstance(parameter.get("name"), str):
            raise MalformedNotification(f"Parameters.parameter[{i}]", "a parameter needs a name")
        name = parameter["name"]
        if name in _EVENT_NAMES:
            parts = parameter.get("part")
            if not isinstance(parts, list):
                raise MalformedNotification(f"Parameters.parameter[{i}]", "an event needs parts")
            raw_events.append((i, parts))
        else:
            values[name] = _value(parameter)
    type_code = values.get("type")
    try:
        kind = NotificationType(str(type_code))
    except ValueError:
        raise MalformedNotification(
            "Parameters.parameter:type", "unknown notification type"
        ) from None
    included = _included(entries[1:])
    events = tuple(_event(i, parts, included) for i, parts in raw_events)
    if kind is NotificationType.EVENT_NOTIFICATION and not events:
        raise MalformedNotification("Parameters.parameter", "an event notification has no events")
    return Notification(
        type=kind,
        subscription=_reference(values.get("subscription")),
        topic=_text(values.get("topic")),
        status=_text(values.get("status")),
        events_since_start=_number(
            next((values[n] for n in _SINCE_NAMES if n in values), None),
            "Parameters.parameter:events-since-subscription-start",
        ),
        events=events,
    )


def _check_values(bundle: Mapping[str, Any]) -> None:
    # Iterative, so the walk itself cannot exhaust the stack.
    pending: list[tuple[Any, str, int]] = [(bundle, "Bundle", 1)]
    while pending:
        value, where, depth = pending.pop()
        if isinstance(value, str):
            if _CONTROL.search(value):
                raise MalformedNotification(where, "a string holds a control character")
            continue
        if isinstance(value, Mapping):
            children = [(v, str(k), f"{where}.{k}") for k, v in value.items()]
        elif isinstance(value, list):
            children = [(v, "", f"{where}[{i}]") for i, v in enumerate(value)]
        else:
            continue
        if depth >= MAX_DEPTH:
            raise MalformedNotification(where, f"nested deeper than {MAX_DEPTH} levels")
        for child, key, child_where in children:
            if _CONTROL.search(key) or len(key) > _MAX_NAME:
                raise MalformedNotification(where, "an element name is not printable")
            pending.append((child, child_where, depth + 1))


def _value(parameter: Mapping[str, Any]) -> Any:
    return next((v for k, v in parameter.items() if k.startswith("value")), None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _reference(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    return None


def _number(value: Any, where: str) -> int | None:
    # R4 has no integer64: the backport sends these counters as strings.
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        # ASCII only: str.isdigit() also says yes to "²", which int() refuses.
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT:
        return value
    raise MalformedNotification(where, "expected a count (a non-negative integer)")


def _included(entries: Sequence[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping):
            raise MalformedNotification(f"Bundle.entry[{i}]", "not an object")
        resource = entry.get("resource")
        if resource is None:
            continue  # id-only payloads list the focus without its content
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise MalformedNotification(f"Bundle.entry[{i}].resource", "not a resource")
        if isinstance(resource.get("id"), str):
            found[(resource["resourceType"], resource["id"])] = resource
    return found


def _event(
    index: int, parts: Sequence[Any], included: Mapping[tuple[str, str], dict[str, Any]]
) -> NotificationEvent:
    where = f"Parameters.parameter[{index}]"
    values: dict[str, Any] = {}
    for part in parts:
        if not isinstance(part, Mapping) or not isinstance(part.get("name"), str):
            raise MalformedNotification(where, "an event part needs a name")
        values.setdefault(part["name"], _value(part))
    focus = values.get("focus")
    reference = _reference(focus)
    if focus is not None and (reference is None or split_reference(reference) is None):
        raise MalformedNotification(f"{where}.focus", "not a reference to a resource")
    parts_of_focus = split_reference(reference) if reference else None
    return NotificationEvent(
        number=_number(next((values[n] for n in _NUMBER_NAMES if n in values), None), where),
        focus=reference,
        resource=included.get(parts_of_focus) if parts_of_focus else None,
        timestamp=_text(values.get("timestamp")),
    )


# -- applying ------------------------------------------------------------------------------


@dataclass
class NotificationReport:
    notification: Notification
    results: list[InboundResult] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # focus on another server: not read


async def apply_notification(
    bundle: Any,
    *,
    client: FhirClient,
    sessions: Sessions,
    mappings: Mappings,
    identifier_system: str,
    now: Clock,
    hooks: PullHooks | None = None,
) -> NotificationReport:
    """Parse ``bundle``, read each id-only focus from the server, and apply every focus
    resource with the pull's rules (``hooks`` as in ``pull_changes``). Handshakes and
    heartbeats change nothing."""
    notification = parse_notification(bundle)
    report = NotificationReport(notification)
    resources = list(notification.resources)
    for reference in notification.references:
        parts = _on_server(client, reference)
        if parts is None:
            # Credentials go with every read: never follow a focus to another server.
            report.foreign.append(reference)
            continue
        result = await client.read(*parts)
        if result.resource is not None:
            resources.append(result.resource)
    if resources:
        report.results = await receive_resources(
            resources,
            client=client,
            sessions=sessions,
            mappings=mappings,
            identifier_system=identifier_system,
            now=now,
            hooks=hooks,
        )
    return report


def _on_server(client: FhirClient, reference: str) -> tuple[str, str] | None:
    parts = split_reference(reference)
    if parts is None:
        return None
    if "://" in reference and not reference.startswith(f"{client.base_url}/"):
        return None
    return parts
