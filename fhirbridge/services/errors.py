"""Errors of the workflow services (enrollment, care plans and tasks, time tracking).

    WorkflowError
     +-- NotFound              no such record (the API also says this for other teams' records)
     +-- Rejected              the request breaks a rule; ``errors`` names each field and why
     +-- Conflict              the request clashes with the current state of a record
          +-- TimerAlreadyRunning   a staff member has one running timer at most
          +-- TimeOverlap           a staff member's time is already in another entry
          +-- TransitionRefused     a status change the state machine does not allow
          +-- RecordLocked          the record can no longer be changed this way

Messages carry kinds, ids, field names and statuses, never record contents, so they are safe
to log and to show.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str


class WorkflowError(Exception):
    """Root of the workflow errors."""

    errors: tuple[FieldError, ...] = ()


class NotFound(WorkflowError):
    def __init__(self, kind: str, local_id: str) -> None:
        self.kind = kind
        self.local_id = local_id
        super().__init__(f"no {kind} {local_id!r}")


class Rejected(WorkflowError):
    def __init__(self, kind: str, errors: Iterable[FieldError]) -> None:
        self.kind = kind
        self.errors = tuple(errors)
        reasons = "; ".join(f"{e.field}: {e.reason}" for e in self.errors)
        super().__init__(f"{kind} rejected: {reasons}")


class Conflict(WorkflowError):
    def __init__(self, message: str, *, errors: Iterable[FieldError] = ()) -> None:
        self.errors = tuple(errors)
        super().__init__(message)


class TimerAlreadyRunning(Conflict):
    def __init__(self, staff_id: str, time_entry_id: str) -> None:
        self.staff_id = staff_id
        self.time_entry_id = time_entry_id
        super().__init__(
            f"staff member {staff_id!r} already has a timer running (time entry "
            f"{time_entry_id!r}); stop it first",
            errors=[FieldError("staff_id", f"timer {time_entry_id} is running")],
        )


class TimeOverlap(Conflict):
    def __init__(self, time_entry_id: str, *, running: bool) -> None:
        self.time_entry_id = time_entry_id
        holder = (
            f"the running timer {time_entry_id}"
            if running
            else f"time entry {time_entry_id} of the same staff member"
        )
        super().__init__(
            f"the time overlaps {holder}; change or delete that one first",
            errors=[FieldError("start", f"overlaps {holder}")],
        )


class TransitionRefused(Conflict):
    def __init__(self, kind: str, local_id: str, current: str, target: str, reason: str) -> None:
        self.kind = kind
        self.local_id = local_id
        self.current = current
        self.target = target
        super().__init__(
            f"{kind} {local_id!r} cannot move from {current} to {target}: {reason}",
            errors=[FieldError("status", f"{current} -> {target}: {reason}")],
        )


class RecordLocked(Conflict):
    def __init__(self, kind: str, local_id: str, reason: str) -> None:
        self.kind = kind
        self.local_id = local_id
        self.reason = reason
        super().__init__(f"{kind} {local_id!r} cannot be changed: {reason}")
