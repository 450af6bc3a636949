"""RPM device readings, stored idempotently by the identifier each has on its source.

``ingest`` is one ``INSERT ... ON CONFLICT (source_system, source_value) DO UPDATE ... WHERE
<something changed>`` per chunk, executed as multi-row inserts (SQLAlchemy's "insertmanyvalues"
on both backends): receiving a reading again updates it, or changes nothing when it is equal,
and never adds a second row, also when two writers send the same batch at once (PostgreSQL's
ON CONFLICT waits for the other writer's row; SQLite has one writer at a time). Each chunk is
sorted by source identifier so concurrent batches lock rows in the same order and cannot
deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from fhirbridge.domain.observation import DeviceReading
from fhirbridge.persistence.repositories._upsert import insert_on_conflict
from fhirbridge.persistence.tables import DeviceReadingRow

__all__ = ["DeviceReadings", "IngestOutcome", "ReadingWrite"]

# Rows per INSERT statement sequence; SQLAlchemy splits each further into multi-row VALUES.
CHUNK = 5_000
_UPDATED_COLUMNS = (
    "patient_id",
    "code",
    "effective_at",
    "day",
    "value",
    "second_value",
    "unit",
    "device",
    "manual",
)


class ReadingWrite(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(slots=True)
class IngestOutcome:
    """What one ingest did to each reading (by our id)."""

    writes: dict[str, ReadingWrite] = field(default_factory=dict)

    def count(self, write: ReadingWrite) -> int:
        return sum(1 for w in self.writes.values() if w is write)

    @property
    def created(self) -> int:
        return self.count(ReadingWrite.CREATED)

    @property
    def updated(self) -> int:
        return self.count(ReadingWrite.UPDATED)

    @property
    def unchanged(self) -> int:
        return self.count(ReadingWrite.UNCHANGED)


def _columns(reading: DeviceReading) -> dict[str, Any]:
    return {
        "id": reading.id,
        "patient_id": reading.patient_id,
        "code": reading.code,
        "effective_at": reading.effective_at,
        "day": reading.day,
        "value": reading.value,
        "second_value": reading.second_value,
        "unit": reading.unit,
        "device": reading.device,
        "manual": reading.manual,
        "source_system": reading.source_system,
        "source_value": reading.source_value,
    }


def _plain(value: Decimal | float | None) -> Decimal | None:
    """A stored value without the column's trailing zeros (``71.000000`` reads as ``71``)."""
    if value is None:
        return None
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    normal = number.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


def _same(stored: DeviceReading, new: DeviceReading) -> bool:
    return all(getattr(stored, name) == getattr(new, name) for name in _UPDATED_COLUMNS)


def _to_reading(row: DeviceReadingRow) -> DeviceReading:
    return DeviceReading(
        id=row.id,
        patient_id=row.patient_id,
        code=row.code,
        effective_at=row.effective_at,
        day=row.day,
        value=_plain(row.value),
        second_value=_plain(row.second_value),
        unit=row.unit,
        device=row.device,
        manual=row.manual,
        source_system=row.source_system,
        source_value=row.source_value,
    )


def _chunks(items: Sequence[DeviceReading], size: int) -> Iterator[Sequence[DeviceReading]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DeviceReadings:
    def __init__(self, session: Session) -> None:
        self._session = session

    def ingest(
        self, readings: Iterable[DeviceReading], *, report: bool = True, chunk: int = CHUNK
    ) -> IngestOutcome:
        """Insert new readings and update changed ones, matched by source identifier.

        A source identifier given twice in one call counts once (the last one wins). With
        ``report`` the stored readings are read first (one query per chunk): equal ones are
        not written at all and each reading is reported created, updated or unchanged, by the
        id it is stored under (looked up by id: ids are ``reading_id(source)``, and a reading
        under another id is reported created yet still updates the stored one). Two writers
        sending the same new reading at once may both report it created; it is stored once
        all the same. ``report=False`` skips the read
        (the fastest path, for bulk loads) and the outcome is empty.
        """
        latest: dict[tuple[str, str], DeviceReading] = {}
        for reading in readings:
            latest[(reading.source_system, reading.source_value)] = reading
        ordered = [latest[key] for key in sorted(latest)]
        outcome = IngestOutcome()
        for part in _chunks(ordered, chunk):
            if not report:
                self._upsert(part)
                continue
            stored = self._stored(part)
            to_write: list[DeviceReading] = []
            for reading in part:
                before = stored.get((reading.source_system, reading.source_value))
                if before is None:
                    outcome.writes[reading.id] = ReadingWrite.CREATED
                    to_write.append(reading)
                elif _same(before, reading):
                    outcome.writes[before.id] = ReadingWrite.UNCHANGED
                else:
                    outcome.writes[before.id] = ReadingWrite.UPDATED
                    to_write.append(reading)
            self._upsert(to_write)
        return outcome

    def _upsert(self, part: Sequence[DeviceReading]) -> None:
        if not part:
            return
        statement = insert_on_conflict(self._session, DeviceReadingRow)
        excluded = statement.excluded
        changed = or_(
            *(
                getattr(DeviceReadingRow, name).is_distinct_from(getattr(excluded, name))
                for name in _UPDATED_COLUMNS
            )
        )
        upsert = statement.on_conflict_do_update(
            index_elements=["source_system", "source_value"],
            set_={name: getattr(excluded, name) for name in _UPDATED_COLUMNS},
            where=changed,
        )
        # Core on the session's connection: one cached statement executed for many rows.
        self._session.connection().execute(upsert, [_columns(r) for r in part])

    def _stored(self, part: Sequence[DeviceReading]) -> dict[tuple[str, str], DeviceReading]:
        # By primary key: ids derive from the source identifier (``reading_id``), and a
        # primary-key IN list is an index lookup on both backends (a pair IN list is not).
        query = select(DeviceReadingRow).where(DeviceReadingRow.id.in_([r.id for r in part]))
        rows = self._session.scalars(query.execution_options(populate_existing=True))
        return {(row.source_system, row.source_value): _to_reading(row) for row in rows}

    def get(self, reading_id: str) -> DeviceReading | None:
        row = self._session.get(DeviceReadingRow, reading_id, populate_existing=True)
        return None if row is None else _to_reading(row)

    def by_source(self, source_system: str, source_value: str) -> DeviceReading | None:
        row = self._session.scalars(
            select(DeviceReadingRow).where(
                DeviceReadingRow.source_system == source_system,
                DeviceReadingRow.source_value == source_value,
            )
        ).one_or_none()
        return None if row is None else _to_reading(row)

    def for_patient(
        self, patient_id: str, *, first_day: date | None = None, last_day: date | None = None
    ) -> list[DeviceReading]:
        """One patient's readings, oldest first, optionally within days (both inclusive)."""
        query = select(DeviceReadingRow).where(DeviceReadingRow.patient_id == patient_id)
        if first_day is not None:
            query = query.where(DeviceReadingRow.day >= first_day)
        if last_day is not None:
            query = query.where(DeviceReadingRow.day <= last_day)
        query = query.order_by(DeviceReadingRow.effective_at, DeviceReadingRow.id)
        return [_to_reading(row) for row in self._session.scalars(query)]

    def for_patients(
        self, patient_ids: Sequence[str], *, taken_since: datetime | None = None
    ) -> Iterator[DeviceReading]:
        """The readings of these patients (by patient, then time), read in batches (export)."""
        if not patient_ids:
            return
        query = select(DeviceReadingRow).where(DeviceReadingRow.patient_id.in_(patient_ids))
        if taken_since is not None:
            query = query.where(DeviceReadingRow.effective_at >= taken_since)
        query = query.order_by(
            DeviceReadingRow.patient_id, DeviceReadingRow.effective_at, DeviceReadingRow.id
        )
        for row in self._session.scalars(query.execution_options(yield_per=1_000)):
            yield _to_reading(row)

    def count(self) -> int:
        return self._session.scalar(select(func.count()).select_from(DeviceReadingRow)) or 0

    def all(self, *, batch: int = 1_000) -> Iterator[DeviceReading]:
        """Every reading, by id, read in batches (for export)."""
        query = select(DeviceReadingRow).order_by(DeviceReadingRow.id)
        for row in self._session.scalars(query.execution_options(yield_per=batch)):
            yield _to_reading(row)
