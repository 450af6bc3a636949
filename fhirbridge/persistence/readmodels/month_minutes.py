"""A calendar month's care-management minutes, pre-aggregated in SQL (``store.month_minutes``).

Billing a whole practice from every time entry would load every entry into Python; here the
database does the per-entry work and Python sees one small group per (patient, enrollment,
program, staff role, staff member, countable):

1. the month is the calendar month in the practice's time zone, turned into UTC bounds;
2. each enrollment gets its counting window in SQL: the month, cut to the enrollment's days
   and to its earliest active consent (local midnights come from a small table of the month's
   days, built here from the time zone, so SQLite needs no time-zone support);
3. each entry's minutes are clipped to its enrollment's window per row (an entry running over
   the month boundary counts the whole minutes inside the month) and summed per group.

Which minutes may count is billing's judgement (``fhirbridge.billing``); this module only
computes it the same way, which the equivalence test of the billing package checks. The
enrollment statuses whose dates count are therefore passed in (``counting``), not decided here.

Timestamps are compared as whole microseconds since the epoch (``_EpochMicros``), exact on both
backends, so rounding to whole minutes matches the roll-up's. The query's layers are
``MATERIALIZED`` CTEs (SQLite 3.35+, PostgreSQL 12+).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import SQLCoreOperations
from sqlalchemy.sql.functions import FunctionElement

from fhirbridge.domain.enrollment import (
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    RiskLevel,
)
from fhirbridge.domain.people import StaffRole
from fhirbridge.domain.timeentry import TimeEntry, TimeEntryStatus
from fhirbridge.persistence.repositories.time_entries import time_entry_of
from fhirbridge.persistence.tables import EnrollmentRow, ProgramConsentRow, TimeEntryRow

__all__ = ["MinutesGroup", "MonthMinutes"]

MINUTE_US = 60_000_000
DAY_US = 86_400_000_000
# Separators inside the aggregated "start,id" lists: control characters no id contains.
_FIELD = "\x1f"
_ITEM = "\x1e"
_IN_CHUNK = 900


class MinutesGroup(NamedTuple):
    """One patient's time entries of the month that share enrollment, program, role and staff.

    ``countable`` groups hold the entries whose minutes may count (finished, complete, inside
    the enrollment's window after consent, at least a whole minute); the others hold the
    entries that count for nothing (their ``minutes`` are 0), including entries naming no
    enrollment or one that does not exist (``enrollment_id`` as the entry has it).
    ``entries`` are (start in UTC microseconds since the epoch, entry id), in no set order;
    ``details`` (only when ``groups`` was asked for them) add each entry's end in UTC
    microseconds (None without minutes or end time) and status, which is all billing needs to
    say why an entry counts for nothing, so set-aside entries are not read again. Both are
    read from ``listed`` (as SQL aggregated them) only when asked for: most groups of a month
    never are. (A named tuple: a practice's month makes tens of thousands of these, and a
    frozen dataclass is several times slower to build.)
    """

    patient_id: str
    enrollment_id: str | None
    program: Program | None
    staff_role: StaffRole | None
    staff_id: str | None
    countable: bool
    minutes: int = 0
    interactive: bool = False
    listed: str = ""

    @property
    def entries(self) -> tuple[tuple[int, str], ...]:
        if not self.listed:
            return ()
        items = (item.split(_FIELD, 2) for item in self.listed.split(_ITEM))
        return tuple([(int(fields[0]), fields[1]) for fields in items])

    @property
    def details(self) -> tuple[tuple[int, str, int | None, TimeEntryStatus], ...]:
        """(start, entry id, end, status) of each entry; ValueError unless ``groups`` was
        called with ``details=True``."""
        if not self.listed:
            return ()
        found = []
        for item in self.listed.split(_ITEM):
            start, entry_id, end, status = item.split(_FIELD)
            found.append((int(start), entry_id, int(end) if end else None, _STATUSES[status]))
        return tuple(found)


def month_days(month: tuple[int, int]) -> tuple[date, date]:
    year, number = month
    following = date(year + number // 12, number % 12 + 1, 1)
    return date(year, number, 1), following - timedelta(days=1)


def _midnight_us(day: date, tz: ZoneInfo) -> int:
    # The local day starts at its wall-clock midnight, whatever UTC offset is in force then.
    moment = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# -- SQL ---------------------------------------------------------------------------------


class _EpochMicros(FunctionElement[int]):
    """Whole microseconds since 1970-01-01 UTC of a ``UtcDateTime`` column."""

    type = BigInteger()
    name = "epoch_micros"
    inherit_cache = True


@compiles(_EpochMicros, "sqlite")
def _epoch_micros_sqlite(element: _EpochMicros, compiler: SQLCompiler, **kw: Any) -> str:
    # UtcDateTime keeps UTC text "YYYY-MM-DD HH:MM:SS.ffffff" (SQLAlchemy's SQLite format).
    column = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(strftime('%s', {column}) AS INTEGER) * 1000000"
        f" + CAST(substr({column}, 21, 6) AS INTEGER))"
    )


@compiles(_EpochMicros, "postgresql")
def _epoch_micros_postgresql(element: _EpochMicros, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"


def _big(value: int) -> ColumnElement[int]:
    return literal(value, BigInteger)


def _later(a: ColumnElement[int], b: ColumnElement[int]) -> ColumnElement[int]:
    return case((a > b, a), else_=b)


def _earlier(a: ColumnElement[int], b: ColumnElement[int]) -> ColumnElement[int]:
    return case((a < b, a), else_=b)


def _clamped(day: SQLCoreOperations[Any], low: date, high: date) -> ColumnElement[Any]:
    return case((day < low, literal(low, Date)), (day > high, literal(high, Date)), else_=day)


def _month_bounds_us(month: tuple[int, int], tz: ZoneInfo) -> tuple[int, int]:
    first, last = month_days(month)
    return _midnight_us(first, tz), _midnight_us(last + timedelta(days=1), tz)


def _windows(month: tuple[int, int], tz: ZoneInfo) -> Select[*tuple[Any, ...]]:
    """Per enrollment: the span of this month its entries may count in, in UTC microseconds.

    From the later of the month's start, the local midnight the enrollment starts and that of
    its earliest active consent (when dated within the month); to the earlier of the month's
    end and the end day's local midnight plus 24 hours.
    """
    first, last = month_days(month)
    start_us, end_us = _month_bounds_us(month, tz)
    month_start, month_end = _big(start_us), _big(end_us)
    # Days outside [first - 2, last + 1] are clamped into it: from there on every bound falls
    # wholly before or after the month, whatever the daylight-saving changes around it.
    low, high = first - timedelta(days=2), last + timedelta(days=1)
    days = union_all(
        *(
            select(
                literal(day, Date).label("day"),
                _big(_midnight_us(day, tz)).label("starts_us"),
            )
            for day in (low + timedelta(days=n) for n in range((high - low).days + 1))
        )
    ).cte("month_days")
    starts, ends, consented = days.alias("starts"), days.alias("ends"), days.alias("consented")
    consent = (
        select(
            ProgramConsentRow.enrollment_id,
            func.min(ProgramConsentRow.given_on).label("given_on"),
        )
        .where(ProgramConsentRow.status == ConsentStatus.ACTIVE.value)
        .group_by(ProgramConsentRow.enrollment_id)
        .subquery("first_consent")
    )
    enrolled_to = case(
        (EnrollmentRow.end_on.is_(None), month_end), else_=ends.c.starts_us + _big(DAY_US)
    )
    # A consent dated after the month blocks the enrollment (billing says so); no clip then.
    consent_from = case(
        (consent.c.given_on <= literal(last, Date), consented.c.starts_us), else_=starts.c.starts_us
    )
    return (
        select(
            EnrollmentRow.id,
            EnrollmentRow.patient_id,
            EnrollmentRow.program,
            EnrollmentRow.status,
            _later(_later(month_start, starts.c.starts_us), consent_from).label("from_us"),
            _earlier(month_end, enrolled_to).label("to_us"),
        )
        .join(starts, starts.c.day == _clamped(EnrollmentRow.start_on, low, high))
        .outerjoin(ends, ends.c.day == _clamped(EnrollmentRow.end_on, low, high))
        .outerjoin(consent, consent.c.enrollment_id == EnrollmentRow.id)
        .outerjoin(consented, consented.c.day == _clamped(consent.c.given_on, low, high))
    )


def _end_us() -> ColumnElement[int]:
    """An entry's end: recorded minutes win over the end time, as in the roll-up."""
    entry = TimeEntryRow
    return case(
        (
            entry.minutes.is_not(None),
            _EpochMicros(entry.started_at) + cast(entry.minutes, BigInteger) * _big(MINUTE_US),
        ),
        else_=_EpochMicros(entry.ended_at),
    )


def _touches_month(start_us: Any, end_us: Any, month_start: int) -> ColumnElement[bool]:
    """Started in the month, or has minutes in it (the end bound is applied separately)."""
    return or_(start_us >= _big(month_start), end_us > _big(month_start))


def _minutes_statement(
    month: tuple[int, int],
    tz: ZoneInfo,
    counting: Collection[EnrollmentStatus],
    patient_ids: Sequence[str] | None,
    details: bool,
) -> Select[Any]:
    start_us_of_month, end_us_of_month = _month_bounds_us(month, tz)
    # MATERIALIZED keeps SQLite from inlining the layers into one another, which would
    # compute every timestamp a dozen times per row.
    windows = _windows(month, tz).cte("windows").prefix_with("MATERIALIZED")
    entry = TimeEntryRow
    month_end = datetime.fromtimestamp(end_us_of_month / 1_000_000, UTC)
    timed = (
        select(
            entry.id,
            entry.patient_id,
            entry.enrollment_id,
            entry.program,
            entry.staff_role,
            entry.staff_id,
            entry.status,
            entry.interactive,
            _EpochMicros(entry.started_at).label("start_us"),
            # The end is worked out from start_us in the next layer: converting a timestamp
            # to microseconds is the costly part on SQLite, so it is done once per row when
            # minutes are recorded (as ``_end_us`` has it: recorded minutes win).
            entry.minutes,
            case((entry.minutes.is_(None), _EpochMicros(entry.ended_at))).label("ended_us"),
        )
        .where(
            entry.patient_id.is_not(None),
            entry.started_at.is_not(None),
            entry.started_at < month_end,
            *([entry.patient_id.in_(list(patient_ids))] if patient_ids is not None else []),
        )
        .cte("timed")
        .prefix_with("MATERIALIZED")
    )
    end_us = func.coalesce(
        timed.c.start_us + cast(timed.c.minutes, BigInteger) * _big(MINUTE_US), timed.c.ended_us
    )
    counted_us = _earlier(end_us, windows.c.to_us) - _later(timed.c.start_us, windows.c.from_us)
    per_entry = (
        select(
            timed.c.id,
            timed.c.patient_id,
            timed.c.enrollment_id,
            timed.c.program,
            timed.c.staff_role,
            timed.c.staff_id,
            timed.c.start_us,
            end_us.label("end_us"),
            timed.c.status,
            timed.c.interactive,
            counted_us.label("counted_us"),
            case(
                (
                    and_(
                        windows.c.id.is_not(None),
                        timed.c.status == TimeEntryStatus.FINISHED.value,
                        end_us.is_not(None),
                        timed.c.program.is_not(None),
                        timed.c.staff_role.is_not(None),
                        timed.c.program == windows.c.program,
                        windows.c.status.in_([s.value for s in counting]),
                        counted_us >= _big(MINUTE_US),
                    ),
                    1,
                ),
                else_=0,
            ).label("countable"),
        )
        # Outer: entries naming no enrollment, or one of nobody or of another patient, are
        # kept (not countable) so that billing can say why they count for nothing.
        .outerjoin(
            windows,
            and_(windows.c.id == timed.c.enrollment_id, windows.c.patient_id == timed.c.patient_id),
        )
        .where(_touches_month(timed.c.start_us, end_us, start_us_of_month))
        .cte("month_entries")
        .prefix_with("MATERIALIZED")
    )
    countable = per_entry.c.countable == 1
    keys = (
        per_entry.c.patient_id,
        per_entry.c.enrollment_id,
        per_entry.c.program,
        per_entry.c.staff_role,
        per_entry.c.staff_id,
        per_entry.c.countable,
    )
    listed = cast(per_entry.c.start_us, String) + _FIELD + per_entry.c.id
    if details:
        end = func.coalesce(cast(per_entry.c.end_us, String), "")
        listed = listed + _FIELD + end + _FIELD + per_entry.c.status
    return (
        select(
            *keys,
            func.sum(case((countable, per_entry.c.counted_us // _big(MINUTE_US)), else_=0)).label(
                "minutes"
            ),
            func.max(
                case((and_(countable, per_entry.c.interactive.is_(true())), 1), else_=0)
            ).label("interactive"),
            func.aggregate_strings(listed, _ITEM).label("entries"),
        )
        .group_by(*keys)
        .order_by(*keys)
    )


_PROGRAMS = {p.value: p for p in Program}
_ROLES = {r.value: r for r in StaffRole}
_STATUSES = {s.value: s for s in TimeEntryStatus}


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    return (ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK))


class MonthMinutes:
    """The month's minutes of a practice, grouped in SQL, and the records judging them needs."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def groups(
        self,
        *,
        month: tuple[int, int],
        tz: ZoneInfo,
        counting: Collection[EnrollmentStatus],
        patient_ids: Sequence[str] | None = None,
        details: bool = False,
    ) -> list[MinutesGroup]:
        """The month's time entries of every patient (or of ``patient_ids``), grouped.

        ``counting``: the enrollment statuses whose dates count (billing's rule). ``details``:
        list each entry's end and status too (``MinutesGroup.details``).
        """
        statement = _minutes_statement(month, tz, counting, patient_ids, details)
        # Unpacked as tuples: attribute access on tens of thousands of rows shows in timings.
        rows = self._session.execute(statement)
        return [
            MinutesGroup(
                row[0],
                row[1],
                _PROGRAMS.get(row[2]),
                _ROLES.get(row[3]),
                row[4],
                bool(row[5]),
                int(row[6] or 0),
                bool(row[7]),
                row[8] or "",
            )
            for row in rows
        ]

    def enrollments(
        self,
        *,
        month: tuple[int, int],
        patient_ids: Sequence[str] | None = None,
        named: Iterable[str | None] = (),
    ) -> tuple[list[Enrollment], list[ProgramConsent]]:
        """Enrollments in play in ``month`` (overlapping it, or ``named`` by its entries) and
        their active consents."""
        first, last = month_days(month)
        table = EnrollmentRow.__table__
        overlapping = and_(
            EnrollmentRow.start_on <= last,
            or_(EnrollmentRow.end_on.is_(None), EnrollmentRow.end_on >= first),
        )
        scope = [EnrollmentRow.patient_id.in_(list(patient_ids))] if patient_ids is not None else []
        statement = select(table).where(overlapping, *scope)
        enrollments = {e.id: e for e in self._enrollments(statement)}
        missing = sorted({n for n in named if n is not None} - enrollments.keys())
        for chunk in _chunks(missing):
            statement = select(table).where(EnrollmentRow.id.in_(chunk), *scope)
            enrollments.update((e.id, e) for e in self._enrollments(statement))
        active = ProgramConsentRow.status == ConsentStatus.ACTIVE.value
        consents: list[ProgramConsent] = []
        if patient_ids is None and not missing:
            # The whole practice: one pass over the active consents of overlapping enrollments.
            statement = (
                select(ProgramConsentRow.__table__)
                .join(EnrollmentRow, EnrollmentRow.id == ProgramConsentRow.enrollment_id)
                .where(active, overlapping)
            )
            consents.extend(self._consents(statement))
        else:
            for chunk in _chunks(sorted(enrollments)):
                statement = select(ProgramConsentRow.__table__).where(
                    ProgramConsentRow.enrollment_id.in_(chunk), active
                )
                consents.extend(self._consents(statement))
        return list(enrollments.values()), consents

    def of_patient(
        self, patient_id: str, *, month: tuple[int, int], tz: ZoneInfo
    ) -> list[TimeEntry]:
        """One patient's time entries that start in ``month`` or have minutes in it."""
        start_us, end_us = _month_bounds_us(month, tz)
        month_end = datetime.fromtimestamp(end_us / 1_000_000, UTC)
        ids = self._session.scalars(
            select(TimeEntryRow.id).where(
                TimeEntryRow.patient_id == patient_id,
                TimeEntryRow.started_at < month_end,
                _touches_month(_EpochMicros(TimeEntryRow.started_at), _end_us(), start_us),
            )
        ).all()
        table = TimeEntryRow.__table__
        found: list[TimeEntry] = []
        for chunk in _chunks(sorted(set(ids))):
            rows = self._session.execute(select(table).where(table.c.id.in_(chunk)))
            found.extend(time_entry_of(row) for row in rows)
        return found

    def _enrollments(self, statement: Select[Any]) -> list[Enrollment]:
        return [
            Enrollment(
                id=row.id,
                patient_id=row.patient_id,
                program=_PROGRAMS[row.program],
                status=EnrollmentStatus(row.status),
                start=row.start_on,
                end=row.end_on,
                conditions=list(row.conditions),
                risk_level=RiskLevel(row.risk_level) if row.risk_level else None,
                care_manager_id=row.care_manager_id,
                billing_practitioner_id=row.billing_practitioner_id,
            )
            for row in self._session.execute(statement)
        ]

    def _consents(self, statement: Select[Any]) -> list[ProgramConsent]:
        # The scope code plays no part in billing, so it is not read.
        return [
            ProgramConsent(
                id=row.id,
                patient_id=row.patient_id,
                enrollment_id=row.enrollment_id,
                program=_PROGRAMS[row.program],
                status=ConsentStatus(row.status),
                given_on=row.given_on,
                method=ConsentMethod(row.method),
                recorded_by_id=row.recorded_by_id,
            )
            for row in self._session.execute(statement)
        ]
