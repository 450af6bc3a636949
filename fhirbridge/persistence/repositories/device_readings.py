"""RPM device readings, stored idempotently by the identifier each has on its source.

``ingest`` works chunk by chunk, linear in the chunk's size: with ``report`` one
``SELECT ... WHERE id IN (...)`` reads the chunk's stored readings (ids derive from the source
identifier, ``reading_id``); equal ones are left alone, and the new and changed ones are
written by multi-row ``INSERT ... ON CONFLICT (source_system, source_value) DO UPDATE ...
WHERE <something changed>`` statements (SQLite: ``VALUES`` of at most ``_ROWS_PER_INSERT``
rows; PostgreSQL: one array per column, ``unnest``), their parameters bound by the columns'
own SQLAlchemy types (the values an ORM write stores). Receiving a reading again updates it,
or changes nothing when it is equal, and never adds a second row, also when two writers send
the same batch at once (PostgreSQL's ON CONFLICT waits for the other writer's row; SQLite has
one writer at a time) or when it comes under another id. Each chunk is sorted by source
identifier so concurrent batches lock rows in the same order and cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from fhirbridge.domain.observation import DeviceReading
from fhirbridge.domain.people import PatientLink
from fhirbridge.persistence.tables import DeviceReadingRow, PatientLinkRow

__all__ = ["DeviceReadings", "IngestOutcome", "ReadingWrite"]

# Readings per chunk: one SELECT of the stored ones and a few multi-row upserts.
CHUNK = 5_000
# Rows per multi-row INSERT on SQLite: 12 parameters each stays well below its 32 766 bound
# parameters per statement (PostgreSQL gets one array per column instead).
_ROWS_PER_INSERT = 1_000
_COLUMNS = (
    "id",
    "patient_id",
    "code",
    "effective_at",
    "day",
    "value",
    "second_value",
    "unit",
    "device",
    "manual",
    "source_system",
    "source_value",
)
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


def _values(reading: DeviceReading) -> tuple[Any, ...]:
    return (
        reading.id,
        reading.patient_id,
        reading.code,
        reading.effective_at,
        reading.day,
        reading.value,
        reading.second_value,
        reading.unit,
        reading.device,
        reading.manual,
        reading.source_system,
        reading.source_value,
    )


def _compared(reading: DeviceReading) -> tuple[Any, ...]:
    """What a re-sent reading is compared on: the columns an upsert updates."""
    return (
        reading.patient_id,
        reading.code,
        reading.effective_at,
        reading.day,
        reading.value,
        reading.second_value,
        reading.unit,
        reading.device,
        reading.manual,
    )


_Processor = Callable[[Any], Any]


_PROCESSORS: dict[tuple[str, str], tuple[_Processor | None, ...]] = {}


def _processors(dialect: Dialect) -> tuple[_Processor | None, ...]:
    """Each column's bind processor (its SQLAlchemy type's, for this dialect), in
    ``_COLUMNS`` order: the statement below is sent to the driver as it is."""
    key = (dialect.name, dialect.driver)
    found = _PROCESSORS.get(key)
    if found is None:
        table = DeviceReadingRow.__table__
        found = tuple(
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in _COLUMNS
        )
        _PROCESSORS[key] = found
    return found


# PostgreSQL's array type of each column, for the ``unnest`` form below.
_PG_ARRAYS = {
    "effective_at": "timestamptz[]",
    "day": "date[]",
    "value": "numeric[]",
    "second_value": "numeric[]",
    "manual": "boolean[]",
}


def _conflict_clause(distinct: str) -> str:
    table = DeviceReadingRow.__tablename__
    return (
        " ON CONFLICT (source_system, source_value) DO UPDATE SET "
        + ", ".join(f"{name} = excluded.{name}" for name in _UPDATED_COLUMNS)
        + " WHERE "
        + " OR ".join(f"{table}.{name} {distinct} excluded.{name}" for name in _UPDATED_COLUMNS)
    )


@cache
def _sqlite_upsert(rows: int) -> str:
    """SQLite: ``INSERT ... VALUES (?, ...) x rows ON CONFLICT (source) DO UPDATE ... WHERE
    changed``."""
    row = "(" + ", ".join(["?"] * len(_COLUMNS)) + ")"
    return (
        f"INSERT INTO {DeviceReadingRow.__tablename__} ({', '.join(_COLUMNS)}) VALUES "
        + ", ".join([row] * rows)
        + _conflict_clause("IS NOT")
    )


@cache
def _postgresql_upsert() -> str:
    """PostgreSQL: the rows as one array per column (``unnest``, in order): a short statement
    of 12 parameters whatever the number of rows, which psycopg parses once."""
    arrays = ", ".join(f"%s::{_PG_ARRAYS.get(name, 'varchar[]')}" for name in _COLUMNS)
    return (
        f"INSERT INTO {DeviceReadingRow.__tablename__} ({', '.join(_COLUMNS)}) "
        f"SELECT * FROM unnest({arrays})" + _conflict_clause("IS DISTINCT FROM")
    )


def _plain(value: Decimal | float | None) -> Decimal | None:
    """A stored value without the column's trailing zeros (``71.000000`` reads as ``71``)."""
    if value is None:
        return None
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    normal = number.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


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
        writes = outcome.writes
        for part in _chunks(ordered, chunk):
            if not report:
                self._upsert(part)
                continue
            stored = self._stored(part)
            to_write: list[DeviceReading] = []
            for reading in part:
                before = stored.get((reading.source_system, reading.source_value))
                if before is None:
                    writes[reading.id] = ReadingWrite.CREATED
                    to_write.append(reading)
                elif before[1] == _compared(reading):
                    writes[before[0]] = ReadingWrite.UNCHANGED
                else:
                    writes[before[0]] = ReadingWrite.UPDATED
                    to_write.append(reading)
            self._upsert(to_write)
        return outcome

    def _upsert(self, part: Sequence[DeviceReading]) -> None:
        """Multi-row upserts, rows in the order given (sorted: the same lock order for
        concurrent writers)."""
        if not part:
            return
        connection = self._session.connection()
        dialect = connection.dialect
        processors = _processors(dialect)
        active = [(i, p) for i, p in enumerate(processors) if p is not None]

        def bound(reading: DeviceReading) -> list[Any]:
            values = list(_values(reading))
            for i, process in active:
                if values[i] is not None:
                    values[i] = process(values[i])
            return values

        if dialect.name == "postgresql":
            columns = list(zip(*(bound(r) for r in part), strict=True))
            connection.exec_driver_sql(_postgresql_upsert(), tuple(list(c) for c in columns))
            return
        if dialect.name != "sqlite":
            raise ValueError(f"no upsert for database backend {dialect.name!r}")
        for start in range(0, len(part), _ROWS_PER_INSERT):
            rows = part[start : start + _ROWS_PER_INSERT]
            parameters = [value for reading in rows for value in bound(reading)]
            connection.exec_driver_sql(_sqlite_upsert(len(rows)), tuple(parameters))

    def _stored(
        self, part: Sequence[DeviceReading]
    ) -> dict[tuple[str, str], tuple[str, tuple[Any, ...]]]:
        """The chunk's stored readings: (id, compared columns) by source identifier."""
        # By primary key: ids derive from the source identifier (``reading_id``), and a
        # primary-key IN list is an index lookup on both backends (a pair IN list is not).
        # Core columns, not ORM objects: nothing here is kept in the session.
        table = DeviceReadingRow.__table__
        query = select(
            table.c.id,
            table.c.source_system,
            table.c.source_value,
            *(table.c[name] for name in _UPDATED_COLUMNS),
        ).where(table.c.id.in_([r.id for r in part]))
        found: dict[tuple[str, str], tuple[str, tuple[Any, ...]]] = {}
        for row in self._session.connection().execute(query):
            (
                id_,
                system,
                value_,
                patient_id,
                code,
                effective_at,
                day,
                value,
                second,
                unit,
                device,
                manual,
            ) = row
            compared = (
                patient_id,
                code,
                effective_at,
                day,
                _plain(value),
                _plain(second),
                unit,
                device,
                manual,
            )
            found[(system, value_)] = (id_, compared)
        return found

    def subjects(self, ehr_references: Collection[str]) -> dict[str, PatientLink]:
        """The patients a batch of readings names by EHR reference (its subjects), by
        reference: one query per thousand references instead of one per patient. A
        reference no patient has is missing from the answer."""
        wanted = sorted(set(ehr_references))
        found: dict[str, PatientLink] = {}
        for start in range(0, len(wanted), _ROWS_PER_INSERT):
            query = (
                select(PatientLinkRow)
                .where(PatientLinkRow.ehr_reference.in_(wanted[start : start + _ROWS_PER_INSERT]))
                .order_by(PatientLinkRow.id)
            )
            for row in self._session.scalars(query):
                found.setdefault(
                    row.ehr_reference,
                    PatientLink(
                        id=row.id,
                        ehr_reference=row.ehr_reference,
                        mrn_system=row.mrn_system,
                        mrn_value=row.mrn_value,
                        team=row.team,
                    ),
                )
        return found

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
