"""What the notification webhook answers the FHIR server (and whoever reads its logs)."""

from __future__ import annotations

from collections import Counter

from fhirbridge.api.schemas._base import Outgoing
from fhirbridge.sync.notifications import Notification, NotificationReport


class NotificationReceipt(Outgoing):
    """A count of what the notification changed here; no resource content."""

    type: str
    subscription: str | None
    events: int
    outcomes: dict[str, int]  # inbound outcome ("applied", "echo", "conflict"...) -> resources
    not_followed: list[str]  # focus references on another server: never read with our credentials

    @classmethod
    def of(
        cls, notification: Notification, report: NotificationReport | None = None
    ) -> NotificationReceipt:
        results = report.results if report is not None else []
        return cls(
            type=notification.type.value,
            subscription=notification.subscription,
            events=len(notification.events),
            outcomes=dict(Counter(r.outcome.value for r in results)),
            not_followed=list(report.foreign) if report is not None else [],
        )
