"""``POST /observations``: what a device hub gets back, line by line."""

from __future__ import annotations

from typing import Literal

from fhirbridge.api.schemas._base import Outgoing

__all__ = ["ObservationLine", "ObservationReport"]


class ObservationLine(Outgoing):
    """One Observation of the request (a single Observation is line 1)."""

    line: int
    status: Literal["created", "updated", "unchanged", "refused"]
    id: str | None = None  # the reading's id here, when stored
    field: str | None = None  # refused: the element at fault, e.g. "identifier"
    reason: str | None = None


class ObservationReport(Outgoing):
    received: int
    stored: int  # created + updated + unchanged
    created: int
    updated: int
    unchanged: int
    refused: int
    lines: list[ObservationLine]
