"""Time entries: the minutes monthly billing is computed from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Select, String, Table, bindparam, func, insert, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhirbridge.domain import (
    ConsentStatus,
    ContactMode,
    Enrollment,
    EnrollmentStatus,
    Program,
    RiskLevel,
    StaffRole,
    TimeEntry,
    TimeEntryActivity,
    TimeEntryStatus,
)
from fhirbridge.persistence.errors import ConstraintViolation, RecordExists
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository, constraint_name
from fhirbridge.persistence.repositories._locks import lock_key, lock_name
from fhirbridge.persistence.repositories._values import enum_member, enum_value
from fhirbridge.persistence.tables import (
    CareTeamMemberRow,
    EnrollmentRow,
    PatientLinkRow,
    ProgramConsentRow,
    RunningTimerRow,
    TimeEntryRow,
    UtcDateTime,
)

_TABLE = cast(Table, TimeEntryRow.__table__)
_INSERT = insert(_TABLE)
_ENTERED_IN_ERROR = TimeEntryStatus.ENTERED_IN_ERROR.value
# How each backend names a clash on the primary key (see repositories._base.constraint_name).
_PRIMARY_KEY = frozenset({"pk_time_entries", "UNIQUE constraint failed: time_entries.id"})


def _overlapping(running_counts: bool) -> Select[str]:
    # Built once (below), not per call: every recorded entry runs it, and building the
    # statement cost more than running it.
    start = bindparam("start", type_=UtcDateTime())
    ends_after_start = TimeEntryRow.ended_at > start
    return (
        select(TimeEntryRow.id)
        .where(
            TimeEntryRow.staff_id == bindparam("staff_id"),
            TimeEntryRow.started_at >= bindparam("since", type_=UtcDateTime()),
            TimeEntryRow.started_at < bindparam("end", type_=UtcDateTime()),
            TimeEntryRow.status != _ENTERED_IN_ERROR,
            TimeEntryRow.id != bindparam("excluding"),
            or_(ends_after_start, TimeEntryRow.ended_at.is_(None))
            if running_counts
            else ends_after_start,
        )
        .order_by(TimeEntryRow.started_at, TimeEntryRow.id)
        .limit(1)
    )


# By whether an entry still running overlaps, i.e. whether ``now`` is after ``start``.
_OVERLAPPING = {running_counts: _overlapping(running_counts) for running_counts in (True, False)}


def _time_held(running_counts: bool) -> Select[Any]:
    """The first overlapping entry and the staff member's running timer, in one statement."""
    timer = RunningTimerRow.__table__.c
    staff_id = bindparam("staff_id", type_=String())
    return select(
        _overlapping(running_counts).scalar_subquery(),
        select(timer.time_entry_id).where(timer.staff_id == staff_id).scalar_subquery(),
        select(timer.started_at).where(timer.staff_id == staff_id).scalar_subquery(),
    )


_TIME_HELD = {running_counts: _time_held(running_counts) for running_counts in (True, False)}


@dataclass(frozen=True, slots=True)
class TimeHeld:
    """What holds a staff member's time: ``TimeEntries.time_held``."""

    overlapping: str | None  # the earliest overlapping entry's id
    running: str | None  # the entry of the staff member's running timer
    running_since: datetime | None  # when that timer started


@dataclass(frozen=True, slots=True)
class RecordingFacts:
    """What recording a staff member's time on a patient is checked against."""

    patient_team: str | None  # None: no such patient (and nothing else was found)
    staff_team: str | None  # None: no such care team member
    staff_role: StaffRole | None
    enrollments: tuple[Enrollment, ...]  # the patient's, by start day, then id
    # Enrollment id -> the day of its earliest active consent to its own program.
    consent_days: Mapping[str, date]


def _recording_facts(*, locking: bool) -> Select[Any]:
    # Built once: every recorded entry runs it. One statement where the ORM took four loads
    # (patient, member, enrollments, consents) and built objects nobody kept. ``locking``
    # (PostgreSQL): the statement also takes the staff member's lock (``lock_staff``).
    staff_id = bindparam("staff_id", type_=String())
    member = CareTeamMemberRow.__table__.c
    enrollment = cast(Table, EnrollmentRow.__table__).c
    consent = ProgramConsentRow.__table__.c
    first_consent = (
        select(func.min(consent.given_on))
        .where(
            consent.enrollment_id == enrollment.id,
            consent.status == ConsentStatus.ACTIVE.value,
            consent.program == enrollment.program,
        )
        .scalar_subquery()
    )
    patient_table = cast(Table, PatientLinkRow.__table__)
    patient = patient_table.c
    source: Any = patient_table
    if locking:
        # Joined in, so it runs before any row comes back (a patient that does not exist may
        # skip it: nothing is recorded then). What the lock guards, the staff member's
        # entries, is read by a later statement, whose snapshot begins after the wait.
        lock = select(
            func.pg_advisory_xact_lock(bindparam("lock_key", type_=BigInteger()))
        ).subquery("staff_lock")
        source = lock.join(patient_table, true())
    return (
        select(
            patient.team,
            select(member.team).where(member.id == staff_id).scalar_subquery(),
            select(member.role).where(member.id == staff_id).scalar_subquery(),
            enrollment.id,
            enrollment.program,
            enrollment.status,
            enrollment.start_on,
            enrollment.end_on,
            enrollment.conditions,
            enrollment.risk_level,
            enrollment.care_manager_id,
            enrollment.billing_practitioner_id,
            first_consent,
        )
        .select_from(source)
        .outerjoin(EnrollmentRow.__table__, enrollment.patient_id == patient.id)
        .where(patient.id == bindparam("patient_id"))
        .order_by(enrollment.start_on, enrollment.id)
    )


# The name of a staff member's lock is this and their id.
_STAFF_LOCK = ("time-of-staff",)
_RECORDING_FACTS = {locking: _recording_facts(locking=locking) for locking in (False, True)}


class TimeEntries(Repository[TimeEntry, TimeEntryRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.TIME_ENTRY, row_type=TimeEntryRow)

    def lock_staff(self, staff_id: str) -> None:
        """Hold the staff member's time (their entries and running timer) until the transaction
        ends; concurrent writers of it wait. Take it before reading what an overlap or a running
        timer is decided on: two writers that both read first would both find the time free."""
        lock_name(self._session, *_STAFF_LOCK, staff_id)

    def add(self, entity: TimeEntry) -> None:
        """Insert a new entry in one statement, without first looking for a stored one: an id
        already stored raises RecordExists (from the primary key), as for every repository."""
        try:
            # Core on the connection, not the ORM's flush: on every recorded entry's path.
            self._session.connection().execute(_INSERT, self._to_columns(entity))
        except IntegrityError as error:
            name = constraint_name(error)
            if name in _PRIMARY_KEY:
                raise RecordExists(self.kind, entity.id) from error
            raise ConstraintViolation(self.kind, entity.id, name) from error

    def first_overlapping(
        self,
        staff_id: str,
        start: datetime,
        end: datetime,
        *,
        now: datetime,
        since: datetime,
        excluding: str | None = None,
    ) -> str | None:
        """The id of the staff member's earliest entry that started in [since, end) and overlaps
        [start, end): one still running counts as running until ``now``, entered-in-error ones
        do not count. None when the time is free."""
        found: str | None = self._session.scalar(
            _OVERLAPPING[now > start],
            {
                "staff_id": staff_id,
                "since": since,
                "start": start,
                "end": end,
                # An id no entry has: "" never matches a stored (non-empty) id.
                "excluding": excluding or "",
            },
        )
        return found

    def recording_facts(
        self, patient_id: str, staff_id: str | None, *, lock_staff: str | None = None
    ) -> RecordingFacts:
        """The patient's team, the staff member's team and role, the patient's enrollments and
        each one's first consent day, in one statement.

        ``lock_staff``: also take ``lock_staff(lock_staff)``, in the same round trip on
        PostgreSQL (taken unless the patient does not exist). Read the staff member's time only
        after this returns.
        """
        parameters: dict[str, Any] = {"patient_id": patient_id, "staff_id": staff_id}
        locking = False
        if lock_staff is not None:
            if self._session.get_bind().dialect.name == "postgresql":
                locking = True
                parameters["lock_key"] = lock_key(*_STAFF_LOCK, lock_staff)
                self._session.flush()  # as lock_name does
            else:
                self.lock_staff(lock_staff)
        rows = self._session.connection().execute(_RECORDING_FACTS[locking], parameters).all()
        if locking:
            self._session.expire_all()  # as lock_name does: read afresh after the wait
        if not rows:
            return RecordingFacts(None, None, None, (), {})
        first = rows[0]
        enrollments: list[Enrollment] = []
        consent_days: dict[str, date] = {}
        for row in rows:
            if row[3] is None:
                continue  # the patient has no enrollment
            enrollments.append(
                Enrollment(
                    id=row[3],
                    patient_id=patient_id,
                    program=Program(row[4]),
                    status=EnrollmentStatus(row[5]),
                    start=row[6],
                    end=row[7],
                    conditions=list(row[8]),
                    risk_level=enum_member(RiskLevel, row[9]),
                    care_manager_id=row[10],
                    billing_practitioner_id=row[11],
                )
            )
            if row[12] is not None:
                consent_days[row[3]] = row[12]
        return RecordingFacts(
            first[0], first[1], enum_member(StaffRole, first[2]), tuple(enrollments), consent_days
        )

    def time_held(
        self,
        staff_id: str,
        start: datetime,
        end: datetime,
        *,
        now: datetime,
        since: datetime,
        excluding: str | None = None,
    ) -> TimeHeld:
        """``first_overlapping`` and the staff member's running timer (``timers.get``) in one
        round trip: every recorded entry asks both."""
        # Changes this session holds go to the database first (the session would do so for an
        # ORM statement); the statement itself runs on the connection, without the ORM's
        # handling of it.
        self._session.flush()
        row = (
            self._session.connection()
            .execute(
                _TIME_HELD[now > start],
                {
                    "staff_id": staff_id,
                    "since": since,
                    "start": start,
                    "end": end,
                    "excluding": excluding or "",
                },
            )
            .one()
        )
        return TimeHeld(row[0], row[1], row[2])

    def _to_columns(self, entity: TimeEntry) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "enrollment_id": entity.enrollment_id,
            "program": enum_value(entity.program),
            "staff_id": entity.staff_id,
            "staff_role": enum_value(entity.staff_role),
            "activity": enum_value(entity.activity),
            "mode": enum_value(entity.mode),
            "status": entity.status.value,
            "started_at": entity.start,
            "ended_at": entity.end,
            "minutes": entity.minutes,
            "interactive": entity.interactive,
            "notes": entity.notes,
        }

    def _to_entity(self, row: TimeEntryRow) -> TimeEntry:
        return time_entry_of(row)

    def list_for_patient(
        self, patient_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[TimeEntry]:
        """Entries started in [since, until), oldest first."""
        statement = select(TimeEntryRow).where(TimeEntryRow.patient_id == patient_id)
        if since is not None:
            statement = statement.where(TimeEntryRow.started_at >= since)
        if until is not None:
            statement = statement.where(TimeEntryRow.started_at < until)
        return self._list(statement.order_by(TimeEntryRow.started_at, TimeEntryRow.id))

    def list_for_staff(
        self, staff_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[TimeEntry]:
        """Entries started in [since, until), oldest first."""
        statement = select(TimeEntryRow).where(TimeEntryRow.staff_id == staff_id)
        if since is not None:
            statement = statement.where(TimeEntryRow.started_at >= since)
        if until is not None:
            statement = statement.where(TimeEntryRow.started_at < until)
        return self._list(statement.order_by(TimeEntryRow.started_at, TimeEntryRow.id))

    def list_for_enrollment(self, enrollment_id: str) -> list[TimeEntry]:
        return self._list(
            select(TimeEntryRow)
            .where(TimeEntryRow.enrollment_id == enrollment_id)
            .order_by(TimeEntryRow.started_at, TimeEntryRow.id)
        )


def time_entry_of(row: Any) -> TimeEntry:
    """A time entry from its row: an ORM row, or a Core row of the table's columns (read models
    that load many entries skip the ORM's identity map)."""
    return TimeEntry(
        id=row.id,
        patient_id=row.patient_id,
        enrollment_id=row.enrollment_id,
        program=enum_member(Program, row.program),
        staff_id=row.staff_id,
        staff_role=enum_member(StaffRole, row.staff_role),
        activity=enum_member(TimeEntryActivity, row.activity),
        mode=enum_member(ContactMode, row.mode),
        status=TimeEntryStatus(row.status),
        start=row.started_at,
        end=row.ended_at,
        minutes=row.minutes,
        interactive=row.interactive,
        notes=row.notes,
    )
