"""Device readings are stored once per source identifier: receiving one again updates it."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.domain import DeviceReading, PatientLink
from fhirbridge.domain.observation import reading_id
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.persistence.repositories.device_readings import ReadingWrite
from fhirbridge.persistence.tables import DeviceReadingRow
from tests.sessions import session_factory

HUB = "https://hub.example/readings"
PATIENT = PatientLink(id="p1", ehr_reference="Patient/1")
OTHER = PatientLink(id="p2", ehr_reference="Patient/2")


def _reading(number: int, *, patient: str = "p1", systolic: str = "128") -> DeviceReading:
    at = datetime(2026, 3, 1, 14, 30, tzinfo=UTC) + timedelta(hours=number)
    return DeviceReading(
        id=reading_id(HUB, f"r{number}"),
        patient_id=patient,
        code="85354-9",
        effective_at=at,
        day=at.date(),
        value=Decimal(systolic),
        second_value=Decimal("82"),
        unit="mm[Hg]",
        device="Device/cuff-1",
        manual=False,
        source_system=HUB,
        source_value=f"r{number}",
    )


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        store = Store(session)
        store.save(PATIENT)
        store.save(OTHER)
    return sessions


def _ingest(sessions: sessionmaker[Session], readings: list[DeviceReading]) -> dict[str, str]:
    with unit_of_work(sessions) as session:
        outcome = Store(session).device_readings.ingest(readings)
    return {key: write.value for key, write in outcome.writes.items()}


def _stored(sessions: sessionmaker[Session]) -> list[DeviceReading]:
    with unit_of_work(sessions, read_only=True) as session:
        store = Store(session)
        return store.device_readings.for_patient("p1") + store.device_readings.for_patient("p2")


def test_a_reading_reads_back_as_it_was_stored(sessions: sessionmaker[Session]) -> None:
    reading = dataclasses.replace(_reading(1), value=Decimal("72.25"), second_value=None)

    _ingest(sessions, [reading])

    assert _stored(sessions) == [reading]


def test_a_new_reading_is_created(sessions: sessionmaker[Session]) -> None:
    assert _ingest(sessions, [_reading(1)]) == {_reading(1).id: "created"}


def test_receiving_the_same_reading_again_changes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    _ingest(sessions, [_reading(1), _reading(2)])

    again = _ingest(sessions, [_reading(1), _reading(2)])

    assert set(again.values()) == {"unchanged"}
    assert len(_stored(sessions)) == 2


def test_a_changed_reading_updates_the_stored_one(sessions: sessionmaker[Session]) -> None:
    _ingest(sessions, [_reading(1)])

    outcome = _ingest(sessions, [_reading(1, systolic="140")])

    assert outcome == {_reading(1).id: "updated"}
    assert [r.value for r in _stored(sessions)] == [Decimal("140")]


def test_a_reading_given_twice_in_one_batch_is_stored_once_the_last_one_wins(
    sessions: sessionmaker[Session],
) -> None:
    _ingest(sessions, [_reading(1, systolic="120"), _reading(1, systolic="131")])

    assert [r.value for r in _stored(sessions)] == [Decimal("131")]


def test_a_reading_keyed_by_its_source_keeps_its_id_when_sent_under_another(
    sessions: sessionmaker[Session],
) -> None:
    _ingest(sessions, [_reading(1)])

    _ingest(sessions, [dataclasses.replace(_reading(1, systolic="150"), id="another-id")])

    stored = _stored(sessions)
    assert [(r.id, r.value) for r in stored] == [(_reading(1).id, Decimal("150"))]


def test_a_reading_can_move_to_another_patient(sessions: sessionmaker[Session]) -> None:
    _ingest(sessions, [_reading(1)])

    _ingest(sessions, [_reading(1, patient="p2")])

    assert [r.patient_id for r in _stored(sessions)] == ["p2"]


def test_readings_of_a_patient_are_selected_by_day(sessions: sessionmaker[Session]) -> None:
    _ingest(sessions, [_reading(n) for n in range(0, 72, 6)])  # 12 readings over 3 days

    with unit_of_work(sessions, read_only=True) as session:
        second_day = Store(session).device_readings.for_patient(
            "p1", first_day=date(2026, 3, 2), last_day=date(2026, 3, 2)
        )

    assert {r.day for r in second_day} == {date(2026, 3, 2)}
    assert len(second_day) == 4


def test_a_manual_reading_is_kept_and_marked(sessions: sessionmaker[Session]) -> None:
    _ingest(sessions, [dataclasses.replace(_reading(1), manual=True, device=None)])

    (stored,) = _stored(sessions)
    assert stored.manual is True
    assert stored.counts_for_device_day is False


def test_a_large_batch_is_stored_in_chunks(sessions: sessionmaker[Session]) -> None:
    readings = [_reading(n) for n in range(2_500)]
    with unit_of_work(sessions) as session:
        outcome = Store(session).device_readings.ingest(readings, chunk=1_000)

    assert outcome.created == 2_500
    with unit_of_work(sessions, read_only=True) as session:
        assert Store(session).device_readings.count() == 2_500


def test_a_bulk_ingest_without_report_still_never_duplicates(
    sessions: sessionmaker[Session],
) -> None:
    readings = [_reading(n) for n in range(300)]
    for _ in range(2):
        with unit_of_work(sessions) as session:
            Store(session).device_readings.ingest(readings, report=False)

    with unit_of_work(sessions, read_only=True) as session:
        assert Store(session).device_readings.count() == 300


def test_hubs_posting_the_same_batch_at_once_store_each_reading_once(
    sessions: sessionmaker[Session],
) -> None:
    batch = [_reading(n) for n in range(200)]
    writers = 6
    barrier = threading.Barrier(writers)
    outcomes: list[dict[str, str]] = []
    failures: list[BaseException] = []

    def post() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(_ingest(sessions, list(batch)))
        except BaseException as exc:  # reported below, not swallowed
            failures.append(exc)

    threads = [threading.Thread(target=post) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    with unit_of_work(sessions, read_only=True) as session:
        rows = session.scalar(select(func.count()).select_from(DeviceReadingRow))
    assert rows == 200
    # Each writer reports every reading, as created (it may have raced another) or unchanged.
    assert len(outcomes) == writers
    for outcome in outcomes:
        assert len(outcome) == 200
        assert set(outcome.values()) <= {ReadingWrite.CREATED, ReadingWrite.UNCHANGED}
