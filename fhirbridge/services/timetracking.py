"""Time tracking: timers, manual entries, edits and deletions, each one audited.

Rules every entry of ours must keep (each breach is a ``Rejected`` naming the field, but for
the last, a ``TimeOverlap`` conflict naming the entry that holds the time):

- ``end`` after ``start``, at least a minute later (``duration_minutes`` floors, so a shorter
  entry would count as zero minutes), at most ``MAX_ENTRY`` long, neither in the future;
- ``minutes``, when given, positive and no more than the span from start to end;
- the patient is enrolled in the program (an active, on-hold or finished enrollment), the entry
  lies within the enrollment period, and not before the date the program consent was given;
- the staff member has no other entry overlapping it (entered-in-error entries do not count;
  a running timer counts as running until now).

A staff member has at most one running timer: starting another is refused with
``TimerAlreadyRunning`` naming the running one, not silently stopped, because the minutes of the
first would otherwise be decided for the caller. Deleting an entry marks it entered-in-error and
keeps it (billing then ignores it, the FHIR server is told, and the audit trail keeps history).
Calendar checks (enrollment period, consent date) use the practice's time zone.

Every write of an entry or timer first locks the staff member's time (``lock_staff``; a new entry
takes it with the read of its facts) for the rest of its transaction, so two requests racing for
the same time take turns: the second sees what the first committed and is refused, instead of
both being accepted.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from fhirbridge.domain import (
    ContactMode,
    Enrollment,
    EnrollmentStatus,
    Program,
    StaffRole,
    TimeEntry,
    TimeEntryActivity,
    TimeEntryStatus,
)
from fhirbridge.persistence import EntityKind, Store
from fhirbridge.persistence.repositories.audit import AuditEvent
from fhirbridge.persistence.repositories.timers import RunningTimer
from fhirbridge.services.errors import (
    FieldError,
    NotFound,
    RecordLocked,
    Rejected,
    TimeOverlap,
    TimerAlreadyRunning,
)

__all__ = [
    "MAX_ENTRY",
    "NewTimeEntry",
    "TimeEntryChanges",
    "TimerStart",
    "audit_trail",
    "delete_entry",
    "edit_entry",
    "record_entry",
    "running_timer",
    "start_timer",
    "stop_timer",
]

MAX_ENTRY = timedelta(hours=24)
MIN_ENTRY = timedelta(minutes=1)
# Enrollments whose period can hold countable time; planned, waitlisted, cancelled and
# entered-in-error ones cannot.
ENROLLED = frozenset({EnrollmentStatus.ACTIVE, EnrollmentStatus.ON_HOLD, EnrollmentStatus.FINISHED})
_KIND = "time entry"


@dataclass(frozen=True, slots=True)
class NewTimeEntry:
    patient_id: str
    program: Program
    staff_id: str
    activity: TimeEntryActivity
    mode: ContactMode
    start: datetime
    end: datetime
    enrollment_id: str | None = None
    minutes: int | None = None
    interactive: bool | None = None
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class TimeEntryChanges:
    """Fields to change; None leaves a field as it is."""

    activity: TimeEntryActivity | None = None
    mode: ContactMode | None = None
    start: datetime | None = None
    end: datetime | None = None
    minutes: int | None = None
    interactive: bool | None = None
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class TimerStart:
    patient_id: str
    program: Program
    staff_id: str
    activity: TimeEntryActivity
    mode: ContactMode
    enrollment_id: str | None = None
    interactive: bool | None = None
    notes: str | None = None


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    START_TIMER = "start-timer"
    STOP_TIMER = "stop-timer"


# -- use cases ---------------------------------------------------------------------------


def record_entry(
    *, store: Store, new: NewTimeEntry, actor: str, now: datetime, tz: ZoneInfo
) -> TimeEntry:
    """Record a finished entry after checking every rule; nothing is written if one fails."""
    entry = TimeEntry(
        id=uuid.uuid4().hex,
        status=TimeEntryStatus.FINISHED,
        patient_id=new.patient_id,
        program=new.program,
        staff_id=new.staff_id,
        activity=new.activity,
        mode=new.mode,
        start=new.start,
        end=new.end,
        minutes=new.minutes,
        interactive=new.interactive,
        notes=new.notes,
    )
    # The staff member's time is locked with the read of the entry's facts (one round trip).
    checked = _check(store, entry, new.enrollment_id, now=now, tz=tz, lock_staff=new.staff_id)
    entry.enrollment_id = checked.enrollment.id
    entry.staff_role = checked.staff_role
    entry.minutes = _minutes(entry)
    _save(store, entry, actor=actor, action=Action.CREATE, before=None)
    return entry


def edit_entry(
    *,
    store: Store,
    entry_id: str,
    changes: TimeEntryChanges,
    actor: str,
    now: datetime,
    tz: ZoneInfo,
) -> TimeEntry:
    entry = _locked(store, entry_id)
    if entry.status is TimeEntryStatus.ENTERED_IN_ERROR:
        raise RecordLocked(_KIND, entry_id, "it is entered-in-error")
    if entry.status is TimeEntryStatus.IN_PROGRESS:
        raise RecordLocked(_KIND, entry_id, "its timer is running; stop it first")
    before = snapshot(entry)
    span_changed = changes.start is not None or changes.end is not None
    updates = {k: v for k, v in _fields(changes) if v is not None}
    edited = dataclasses.replace(entry, **updates)
    if span_changed and changes.minutes is None:
        edited.minutes = None  # recomputed from the new span below
    _check(store, edited, edited.enrollment_id, now=now, tz=tz)
    edited.minutes = _minutes(edited)
    _save(store, edited, actor=actor, action=Action.UPDATE, before=before)
    return edited


def delete_entry(*, store: Store, entry_id: str, actor: str) -> TimeEntry:
    """Mark the entry entered-in-error; it is kept. Deleting it again changes nothing."""
    entry = _locked(store, entry_id)
    if entry.status is TimeEntryStatus.ENTERED_IN_ERROR:
        return entry
    before = snapshot(entry)
    if entry.status is TimeEntryStatus.IN_PROGRESS and entry.staff_id is not None:
        store.timers.clear(entry.staff_id)  # discarding a running timer
    entry.status = TimeEntryStatus.ENTERED_IN_ERROR
    _save(store, entry, actor=actor, action=Action.DELETE, before=before)
    return entry


def start_timer(
    *, store: Store, start: TimerStart, actor: str, now: datetime, tz: ZoneInfo
) -> TimeEntry:
    store.time_entries.lock_staff(start.staff_id)
    running = store.timers.get(start.staff_id)
    if running is not None:
        raise TimerAlreadyRunning(start.staff_id, running.time_entry_id)
    entry = TimeEntry(
        id=uuid.uuid4().hex,
        status=TimeEntryStatus.IN_PROGRESS,
        patient_id=start.patient_id,
        program=start.program,
        staff_id=start.staff_id,
        activity=start.activity,
        mode=start.mode,
        start=now,
        interactive=start.interactive,
        notes=start.notes,
    )
    checked = _check(store, entry, start.enrollment_id, now=now, tz=tz)
    entry.enrollment_id = checked.enrollment.id
    entry.staff_role = checked.staff_role
    _save(store, entry, actor=actor, action=Action.START_TIMER, before=None)
    store.timers.start(RunningTimer(start.staff_id, entry.id, now))
    return entry


def stop_timer(
    *,
    store: Store,
    staff_id: str,
    actor: str,
    now: datetime,
    tz: ZoneInfo,
    notes: str | None = None,
    interactive: bool | None = None,
) -> TimeEntry:
    """Finish the running entry at ``now``. A timer stopped within its first minute is refused
    (zero-length) and keeps running; delete its entry to discard it."""
    store.time_entries.lock_staff(staff_id)
    running = store.timers.get(staff_id)
    if running is None:
        raise NotFound("running timer", staff_id)
    entry = _require(store, running.time_entry_id)
    before = snapshot(entry)
    stopped = dataclasses.replace(entry, status=TimeEntryStatus.FINISHED, end=now)
    if notes is not None:
        stopped.notes = notes
    if interactive is not None:
        stopped.interactive = interactive
    _check(store, stopped, stopped.enrollment_id, now=now, tz=tz)
    stopped.minutes = _minutes(stopped)
    store.timers.clear(staff_id)
    _save(store, stopped, actor=actor, action=Action.STOP_TIMER, before=before)
    return stopped


def running_timer(*, store: Store, staff_id: str) -> TimeEntry | None:
    running = store.timers.get(staff_id)
    return None if running is None else store.time_entries.get(running.time_entry_id)


def audit_trail(*, store: Store, entry_id: str) -> list[AuditEvent]:
    _require(store, entry_id)
    return store.audit.for_record(EntityKind.TIME_ENTRY, entry_id)


def snapshot(entry: TimeEntry) -> dict[str, Any]:
    """The entry as JSON, for the audit trail."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in _fields(entry)
    }


# -- rules -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Checked:
    enrollment: Enrollment  # the enrollment the entry belongs to
    staff_role: StaffRole  # the staff member's role, recorded with the entry


def _check(
    store: Store,
    entry: TimeEntry,
    enrollment_id: str | None,
    *,
    now: datetime,
    tz: ZoneInfo,
    lock_staff: str | None = None,
) -> _Checked:
    """Every rule of the module docstring; raises Rejected with all the breaches found, or
    TimeOverlap when the entry breaks no other rule but overlaps another. ``lock_staff``: the
    staff member whose time to lock first, when the caller does not hold the lock yet."""
    errors = list(_span_errors(entry, now))
    # Patient, staff member, enrollments and consent days in one read.
    facts = (
        None
        if entry.patient_id is None
        else store.time_entries.recording_facts(
            entry.patient_id, entry.staff_id, lock_staff=lock_staff
        )
    )
    if facts is None or facts.patient_team is None or entry.patient_id is None:
        raise NotFound("patient", entry.patient_id or "")
    # Only the patient's own team records time on them, whoever the caller may see (an admin
    # sees every team); the reason is the same for a missing member and another team's.
    if facts.staff_role is None or facts.staff_team != facts.patient_team:
        errors.append(FieldError("staff_id", "no such care team member"))
    enrollment: Enrollment | None = None
    if entry.program is None:
        errors.append(FieldError("program", "required"))
    else:
        enrollment, enrollment_errors = _enrollment(
            facts.enrollments, entry.patient_id, entry.program, entry.start, enrollment_id
        )
        errors.extend(enrollment_errors)
    if enrollment is not None and entry.start is not None:
        given_on = facts.consent_days.get(enrollment.id)
        errors.extend(
            _calendar_errors(entry.start, entry.end, enrollment, given_on, now=now, tz=tz)
        )
    if errors or enrollment is None or facts.staff_role is None:
        raise Rejected(_KIND, errors)
    if entry.staff_id is not None and entry.start is not None:
        _check_overlap(store, entry, entry.staff_id, entry.start, now=now)
    return _Checked(enrollment, facts.staff_role)


def _span_errors(entry: TimeEntry, now: datetime) -> Iterator[FieldError]:
    start, end = entry.start, entry.end
    if start is None:
        yield FieldError("start", "required")
        return
    if start > now:
        yield FieldError("start", "in the future")
    if entry.status is TimeEntryStatus.IN_PROGRESS:
        return
    if end is None:
        yield FieldError("end", "required")
        return
    if end > now:
        yield FieldError("end", "in the future")
    if end < start:
        yield FieldError("end", "before start")
    elif end - start < MIN_ENTRY:
        yield FieldError("end", "zero-length: end must be at least a minute after start")
    elif end - start > MAX_ENTRY:
        yield FieldError("end", f"longer than {MAX_ENTRY.total_seconds() / 3600:g} hours")
    if entry.minutes is not None:
        if entry.minutes <= 0:
            yield FieldError("minutes", "must be positive")
        elif end > start and entry.minutes > (end - start).total_seconds() // 60:
            yield FieldError("minutes", "more than the minutes between start and end")


def _enrollment(
    enrollments: Sequence[Enrollment],
    patient_id: str,
    program: Program,
    start: datetime | None,
    enrollment_id: str | None,
) -> tuple[Enrollment | None, list[FieldError]]:
    """The enrollment the entry belongs to, among the patient's ``enrollments`` (by start
    day, then id)."""
    if enrollment_id is not None:
        found = next((e for e in enrollments if e.id == enrollment_id), None)
        if found is None or found.patient_id != patient_id:
            return None, [FieldError("enrollment_id", "no such enrollment for this patient")]
        if found.program is not program:
            reason = f"enrollment {enrollment_id} is in {found.program.value}, not {program.value}"
            return None, [FieldError("program", reason)]
        if found.status not in ENROLLED:
            reason = f"patient is not enrolled in {program.value} (enrollment {found.status})"
            return None, [FieldError("program", reason)]
        return found, []
    candidates = [e for e in enrollments if e.program is program and e.status in ENROLLED]
    if not candidates:
        return None, [FieldError("program", f"patient is not enrolled in {program.value}")]
    # Several enrollments in one program follow each other; the latest that began by the
    # entry's start is the one it belongs to.
    started = [e for e in candidates if start is None or e.start <= start.date()]
    return (started or candidates)[-1], []


def _calendar_errors(
    start: datetime,
    end: datetime | None,
    enrollment: Enrollment,
    given_on: date | None,
    *,
    now: datetime,
    tz: ZoneInfo,
) -> Iterator[FieldError]:
    first_day = start.astimezone(tz).date()
    last_day = (end or now).astimezone(tz).date()
    period = f"{enrollment.start} to {enrollment.end or 'open'}"
    if first_day < enrollment.start:
        yield FieldError("start", f"outside the enrollment period ({period})")
    if enrollment.end is not None and last_day > enrollment.end:
        yield FieldError("end", f"outside the enrollment period ({period})")
    if given_on is None:
        yield FieldError("program", f"no active consent to {enrollment.program.value}")
    elif first_day < given_on:
        yield FieldError("start", f"before consent was given ({given_on})")


def _check_overlap(
    store: Store, entry: TimeEntry, staff_id: str, start: datetime, *, now: datetime
) -> None:
    """Raise TimeOverlap naming the staff member's entry or running timer that holds the time.
    Callers hold ``lock_staff``, so what is read here stays true until they commit."""
    end = entry.end or now
    # No entry is longer than MAX_ENTRY, so none that started before then can reach ``start``.
    held = store.time_entries.time_held(
        staff_id, start, end, now=now, since=start - MAX_ENTRY, excluding=entry.id
    )
    if held.overlapping is not None:
        raise TimeOverlap(held.overlapping, running=False)
    running, since = held.running, held.running_since
    if running is not None and since is not None and running != entry.id and since < end:
        raise TimeOverlap(running, running=True)


# -- plumbing ----------------------------------------------------------------------------


def _require(store: Store, entry_id: str) -> TimeEntry:
    entry = store.time_entries.get(entry_id)
    if entry is None:
        raise NotFound(_KIND, entry_id)
    return entry


def _locked(store: Store, entry_id: str) -> TimeEntry:
    """The entry as it is once its staff member's time is locked: a request that held the lock
    before may have changed it (edited, stopped, deleted) while this one waited."""
    entry = _require(store, entry_id)
    if entry.staff_id is None:
        return entry
    store.time_entries.lock_staff(entry.staff_id)
    return _require(store, entry_id)


def _minutes(entry: TimeEntry) -> int | None:
    if entry.minutes is not None:
        return entry.minutes
    return entry.duration_minutes


def _fields(obj: TimeEntry | TimeEntryChanges) -> Iterator[tuple[str, Any]]:
    for f in dataclasses.fields(obj):
        yield f.name, getattr(obj, f.name)


def _save(
    store: Store, entry: TimeEntry, *, actor: str, action: Action, before: dict[str, Any] | None
) -> None:
    store.save(entry, new=before is None)  # a new entry has no stored one to look for
    store.audit.record(
        actor=actor,
        action=action.value,
        entity_kind=EntityKind.TIME_ENTRY,
        local_id=entry.id,
        before=before,
        after=snapshot(entry),
    )
