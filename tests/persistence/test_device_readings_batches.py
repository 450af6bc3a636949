"""A batch of device readings costs a few statements per chunk, whatever its size: one read of
the stored readings, multi-row upserts of the new and changed ones, one look-up of the
patients it names. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.domain import DeviceReading, PatientLink
from fhirbridge.domain.observation import reading_id
from fhirbridge.persistence import Store, unit_of_work
from tests.sessions import session_factory

HUB = "https://hub.example/readings"
PATIENTS = [PatientLink(id=f"p{n}", ehr_reference=f"Patient/{n}") for n in range(3)]


def _reading(number: int, *, systolic: int = 128) -> DeviceReading:
    at = datetime(2026, 3, 1, 14, 30, tzinfo=UTC) + timedelta(minutes=number)
    return DeviceReading(
        id=reading_id(HUB, f"r{number}"),
        patient_id=f"p{number % 3}",
        code="85354-9",
        effective_at=at,
        day=at.date(),
        value=Decimal(systolic),
        second_value=Decimal(82),
        unit="mm[Hg]",
        device="Device/cuff-1",
        source_system=HUB,
        source_value=f"r{number}",
    )


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        store = Store(session)
        for patient in PATIENTS:
            store.save(patient)
    return sessions


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _readings_sql(seen: list[str]) -> list[str]:
    return [s.split()[0].upper() for s in seen if "device_readings" in s]


def test_a_chunk_of_2500_readings_is_one_select_and_three_multi_row_upserts_at_most(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    readings = [_reading(n) for n in range(2_500)]

    with _statements(engine) as seen, unit_of_work(sessions) as session:
        outcome = Store(session).device_readings.ingest(readings, chunk=5_000)

    assert outcome.created == 2_500
    kinds = _readings_sql(seen)
    # SQLite takes at most 1 000 rows a statement; PostgreSQL one array per column, any size.
    inserts = 3 if engine.dialect.name == "sqlite" else 1
    assert kinds == ["SELECT", *["INSERT"] * inserts]


def test_resending_a_batch_with_one_changed_value_writes_only_that_one(
    sessions: sessionmaker[Session],
) -> None:
    readings = [_reading(n) for n in range(1_200)]
    with unit_of_work(sessions) as session:
        Store(session).device_readings.ingest(readings)

    resent = [*readings[:-1], dataclasses.replace(readings[-1], value=Decimal(141))]
    with unit_of_work(sessions) as session:
        outcome = Store(session).device_readings.ingest(resent, chunk=500)

    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 1, 1_199)
    with unit_of_work(sessions, read_only=True) as session:
        store = Store(session)
        assert store.device_readings.count() == 1_200
        assert store.device_readings.get(readings[-1].id).value == Decimal(141)  # type: ignore[union-attr]


def test_the_patients_a_batch_names_are_found_in_one_query_unknown_ones_left_out(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    wanted = ["Patient/0", "Patient/2", "Patient/unknown"]

    with _statements(engine) as seen, unit_of_work(sessions, read_only=True) as session:
        found = Store(session).device_readings.subjects(wanted)

    assert found == {"Patient/0": PATIENTS[0], "Patient/2": PATIENTS[2]}
    assert len([s for s in seen if "patient_links" in s]) == 1
