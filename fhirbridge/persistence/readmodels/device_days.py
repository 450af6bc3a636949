"""Days with device readings per RPM period, counted in SQL (``store.device_days``).

Judging a month of RPM device codes needs, per RPM enrollment, the first day of monitoring and
the number of distinct days with readings in each of its 30-day periods; never the readings
themselves. So:

1. ``episodes``: each RPM enrollment whose status counts, with its billing practitioner, its
   earliest active consent and its first day with a counting reading (not ``manual``) on or
   after its start and not after its end (or ``until``): one index seek per enrollment on
   ``device_readings (patient_id, day)``;
2. ``period_days``: the enrollment's counting readings from that first day up to its end (or
   ``until``), grouped by period number ``(day - first day) div period_days + 1``, with
   ``COUNT(DISTINCT day)`` and the last day, streamed in batches: Python holds one row per
   enrollment and period, whatever the number of readings.

``day`` is the reading's day in the practice time zone, fixed at ingest, so nothing here needs
a time zone. Which periods and codes a month bills is ``fhirbridge.billing.device_days``; the
billing tests hold this module to its ``count_days``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Integer, Row, Select, and_, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from fhirbridge.domain.enrollment import ConsentStatus, EnrollmentStatus, Program
from fhirbridge.domain.goal import GoalLifecycle, GoalTarget
from fhirbridge.persistence.repositories._values import target_from_json
from fhirbridge.persistence.tables import (
    DeviceReadingRow,
    EnrollmentRow,
    GoalRow,
    ProgramConsentRow,
)

__all__ = ["DeviceDays", "EpisodeRow", "GoalTargetRow", "LatestReading", "PeriodDaysRow"]

_IN_CHUNK = 900  # patient ids per IN list (SQLite's variable limit, with room to spare)
_BATCH = 2_000


class EpisodeRow(NamedTuple):
    """An RPM enrollment and its first day with a counting reading (None: none yet)."""

    enrollment_id: str
    patient_id: str
    status: EnrollmentStatus
    start: date
    end: date | None
    billing_practitioner_id: str | None
    consent_on: date | None
    first_day: date | None


class PeriodDaysRow(NamedTuple):
    enrollment_id: str
    patient_id: str
    number: int  # the period, from 1
    days: int  # distinct days with counting readings
    last_day: date  # the period's latest day with a counting reading
    episode: EpisodeRow  # the enrollment the period belongs to (the same for all its periods)


class LatestReading(NamedTuple):
    """A patient's latest reading of one code (the worklist's out-of-range check)."""

    id: str
    patient_id: str
    code: str
    day: date
    value: Decimal | None
    second_value: Decimal | None
    unit: str | None


class GoalTargetRow(NamedTuple):
    goal_id: str
    patient_id: str
    description: str | None
    target: GoalTarget


class _DayNumber(FunctionElement[int]):
    """Days since 1970-01-01 of a DATE column, as an integer, on either backend."""

    type = Integer()
    inherit_cache = True


@compiles(_DayNumber, "postgresql")
def _day_number_pg(element: _DayNumber, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} - DATE '1970-01-01')"


@compiles(_DayNumber, "sqlite")
def _day_number_sqlite(element: _DayNumber, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


class DeviceDays:
    def __init__(self, session: Session) -> None:
        self._session = session

    def episodes(
        self,
        *,
        until: date,
        statuses: Collection[EnrollmentStatus],
        patient_ids: Sequence[str] | None = None,
    ) -> list[EpisodeRow]:
        """RPM enrollments in ``statuses`` that started by ``until``, with their first day of
        monitoring up to ``until``; by patient, then enrollment start and id."""
        found: list[EpisodeRow] = []
        for chunk in _chunks(patient_ids):
            query = self._episodes(until=until, statuses=statuses, patient_ids=chunk).order_by(
                EnrollmentRow.patient_id, EnrollmentRow.start_on, EnrollmentRow.id
            )
            found.extend(_episode(row) for row in self._session.execute(query))
        return found

    def period_days(
        self,
        *,
        until: date,
        statuses: Collection[EnrollmentStatus],
        period_days: int = 30,
        patient_ids: Sequence[str] | None = None,
    ) -> Iterator[PeriodDaysRow]:
        """Distinct days with counting readings per RPM enrollment and period, up to
        ``until``; by enrollment id and period number, streamed."""
        for chunk in _chunks(patient_ids):
            # MATERIALIZED: the first day is sought once per enrollment, not once per reading.
            episodes = (
                self._episodes(until=until, statuses=statuses, patient_ids=chunk)
                .cte("episodes")
                .prefix_with("MATERIALIZED")
            )
            # Each patient's distinct days with a counting reading first (a hash aggregate on
            # PostgreSQL, the index's order on SQLite), then a plain count per period: no
            # COUNT(DISTINCT), which would sort every reading.
            reading = DeviceReadingRow
            days = select(reading.patient_id, reading.day).where(
                reading.manual.is_(False), reading.day <= until
            )
            if chunk is not None:
                days = days.where(reading.patient_id.in_(chunk))
            distinct_days = days.group_by(reading.patient_id, reading.day).subquery("days")
            day = distinct_days.c.day
            number = (
                (_DayNumber(day) - _DayNumber(episodes.c.first_day)) // period_days + 1
            ).label("number")
            counted = (
                select(
                    episodes.c.id,
                    number,
                    func.count().label("days"),
                    func.max(day).label("last_day"),
                )
                .select_from(episodes)
                .join(
                    distinct_days,
                    and_(
                        distinct_days.c.patient_id == episodes.c.patient_id,
                        day >= episodes.c.first_day,
                        or_(episodes.c.end_on.is_(None), day <= episodes.c.end_on),
                    ),
                )
                .where(episodes.c.first_day.is_not(None))
                .group_by(episodes.c.id, number)
                .subquery("counted")
            )
            # The enrollment's columns join the counts afterwards: grouping stays narrow.
            query = (
                select(episodes, counted.c.number, counted.c.days, counted.c.last_day)
                .join(counted, counted.c.id == episodes.c.id)
                .order_by(episodes.c.id, counted.c.number)
            )
            result = self._session.execute(query.execution_options(yield_per=_BATCH))
            for row in result:
                yield PeriodDaysRow(
                    row.id, row.patient_id, int(row.number), row.days, row.last_day, _episode(row)
                )

    def latest_readings(self, *, since: date, patient_ids: Sequence[str]) -> list[LatestReading]:
        """Each patient's latest reading of each code on or after ``since`` (typed-in ones
        too: a value is a value, even where it earns no device day)."""
        found: list[LatestReading] = []
        reading = DeviceReadingRow
        for chunk in _chunks(patient_ids):
            assert chunk is not None
            rank = (
                func.row_number()
                .over(
                    partition_by=(reading.patient_id, reading.code),
                    order_by=(reading.effective_at.desc(), reading.id.desc()),
                )
                .label("rank")
            )
            ranked = (
                select(
                    reading.id,
                    reading.patient_id,
                    reading.code,
                    reading.day,
                    reading.value,
                    reading.second_value,
                    reading.unit,
                    rank,
                )
                .where(reading.patient_id.in_(chunk), reading.day >= since)
                .subquery()
            )
            query = (
                select(
                    ranked.c.id,
                    ranked.c.patient_id,
                    ranked.c.code,
                    ranked.c.day,
                    ranked.c.value,
                    ranked.c.second_value,
                    ranked.c.unit,
                )
                .where(ranked.c.rank == 1)
                .order_by(ranked.c.patient_id, ranked.c.code)
            )
            found.extend(LatestReading(*row) for row in self._session.execute(query))
        return found

    def goal_targets(self, *, patient_ids: Sequence[str]) -> list[GoalTargetRow]:
        """The measurable targets of the patients' active goals."""
        found: list[GoalTargetRow] = []
        for chunk in _chunks(patient_ids):
            assert chunk is not None
            query = (
                select(GoalRow.id, GoalRow.patient_id, GoalRow.description, GoalRow.target)
                .where(
                    GoalRow.patient_id.in_(chunk),
                    GoalRow.lifecycle_status == GoalLifecycle.ACTIVE.value,
                    GoalRow.target.is_not(None),
                )
                .order_by(GoalRow.patient_id, GoalRow.id)
            )
            for goal_id, patient_id, description, data in self._session.execute(query):
                target = target_from_json(data)
                if target is not None and target.measure is not None:
                    found.append(GoalTargetRow(goal_id, patient_id, description, target))
        return found

    def _episodes(
        self,
        *,
        until: date,
        statuses: Collection[EnrollmentStatus],
        patient_ids: Sequence[str] | None,
    ) -> Select[*tuple[Any, ...]]:
        enrollment = EnrollmentRow
        reading = DeviceReadingRow
        first_day = (
            select(func.min(reading.day))
            .where(
                reading.patient_id == enrollment.patient_id,
                reading.day >= enrollment.start_on,
                reading.day <= until,
                or_(enrollment.end_on.is_(None), reading.day <= enrollment.end_on),
                reading.manual.is_(False),
            )
            .scalar_subquery()
        )
        consent_on = (
            select(func.min(ProgramConsentRow.given_on))
            .where(
                ProgramConsentRow.enrollment_id == enrollment.id,
                ProgramConsentRow.status == ConsentStatus.ACTIVE.value,
            )
            .scalar_subquery()
        )
        query: Select[*tuple[Any, ...]] = select(
            enrollment.id,
            enrollment.patient_id,
            enrollment.status,
            enrollment.start_on,
            enrollment.end_on,
            enrollment.billing_practitioner_id,
            consent_on.label("consent_on"),
            first_day.label("first_day"),
        ).where(
            enrollment.program == Program.RPM.value,
            enrollment.status.in_([s.value for s in statuses]),
            enrollment.start_on <= until,
        )
        if patient_ids is not None:
            query = query.where(enrollment.patient_id.in_(patient_ids))
        return query


def _chunks(patient_ids: Sequence[str] | None) -> Iterator[Sequence[str] | None]:
    if patient_ids is None:
        yield None
        return
    for start in range(0, len(patient_ids), _IN_CHUNK):
        yield patient_ids[start : start + _IN_CHUNK]


def _episode(row: Row[Any]) -> EpisodeRow:
    return EpisodeRow(
        row.id,
        row.patient_id,
        EnrollmentStatus(row.status),
        row.start_on,
        row.end_on,
        row.billing_practitioner_id,
        row.consent_on,
        row.first_day,
    )
