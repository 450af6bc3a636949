"""Read-only units of work: reads that never take SQLite's write lock, while units of work that
may write still take it up front (``BEGIN IMMEDIATE``), and a lock that stays taken answers
``DatabaseBusy`` rather than an OperationalError."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

import fhirbridge.persistence.db
from fhirbridge.domain import PatientLink
from fhirbridge.persistence import DatabaseBusy, Store, make_engine, unit_of_work
from fhirbridge.persistence.tables import PatientLinkRow
from tests.sessions import session_factory

# How long a thread under test may take before the test gives up on it: a safety net against
# a hang, never what is asserted.
GIVE_UP_SECONDS = 60


def _patient(n: int) -> PatientLink:
    return PatientLink(id=f"pat-{n}", ehr_reference=f"Patient/ehr-{n}", team="north")


def _patients(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PatientLinkRow)) or 0


def _in_thread(work: Callable[[], object]) -> object:
    """Run ``work`` in another thread (another pooled connection); its result or its error."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=GIVE_UP_SECONDS)
    assert outcome, "the other thread did not finish"
    return outcome[0]


def _save(sessions: sessionmaker[Session], patient: PatientLink) -> str:
    with unit_of_work(sessions) as session:
        Store(session).save(patient)
    return "committed"


def _count(sessions: sessionmaker[Session]) -> int:
    with unit_of_work(sessions, read_only=True) as session:
        return _patients(session)


def _probe_write_lock(url: str) -> str:
    """Try to take the write lock from a connection of its own, without waiting."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return "free"
    except sqlite3.OperationalError:
        return "taken"
    finally:
        connection.close()


@pytest.fixture
def sqlite_sessions(sqlite_engine: Engine) -> sessionmaker[Session]:
    return session_factory(sqlite_engine)


def test_a_read_only_unit_of_work_does_not_block_a_writer_on_sqlite(
    sqlite_sessions: sessionmaker[Session],
) -> None:
    with unit_of_work(sqlite_sessions, read_only=True) as reading:
        assert _patients(reading) == 0  # the read transaction is open from here on
        assert _in_thread(lambda: _save(sqlite_sessions, _patient(1))) == "committed"
    assert _count(sqlite_sessions) == 1


def test_a_read_only_unit_of_work_reads_while_a_writer_holds_the_lock_on_sqlite(
    sqlite_sessions: sessionmaker[Session],
) -> None:
    _save(sqlite_sessions, _patient(1))
    with unit_of_work(sqlite_sessions) as writing:
        Store(writing).save(_patient(2))
        # Not committed yet: the reader sees what was committed before.
        assert _in_thread(lambda: _count(sqlite_sessions)) == 1
    assert _count(sqlite_sessions) == 2


def test_a_read_only_unit_of_work_leaves_the_write_lock_free_on_sqlite(
    sqlite_sessions: sessionmaker[Session], sqlite_url: str
) -> None:
    with unit_of_work(sqlite_sessions, read_only=True) as reading:
        _patients(reading)
        assert _probe_write_lock(sqlite_url) == "free"


def test_a_unit_of_work_that_may_write_holds_the_write_lock_from_its_start_on_sqlite(
    sqlite_sessions: sessionmaker[Session], sqlite_url: str
) -> None:
    with unit_of_work(sqlite_sessions) as writing:
        _patients(writing)  # only a read so far
        assert _probe_write_lock(sqlite_url) == "taken"
    assert _probe_write_lock(sqlite_url) == "free"


def test_a_write_in_a_read_only_unit_of_work_fails_and_writes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    with pytest.raises(DBAPIError), unit_of_work(sessions, read_only=True) as session:
        Store(session).save(_patient(1))
    assert _count(sessions) == 0


def test_a_unit_of_work_that_may_write_writes_after_a_read_only_one_on_the_same_connection(
    sessions: sessionmaker[Session],
) -> None:
    # Connections go back to the pool and are reused: read-only must not stick to them.
    for n in range(3):
        assert _count(sessions) == n
        _save(sessions, _patient(n))
    assert _count(sessions) == 3


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fhirbridge.persistence.db, "SQLITE_BUSY_TIMEOUT_MS", 50)


@pytest.fixture
def impatient_sessions(
    sqlite_url: str, short_busy_timeout: None
) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(sqlite_url)
    yield session_factory(engine)
    engine.dispose()


def test_a_write_lock_held_elsewhere_for_too_long_raises_database_busy_and_writes_nothing(
    impatient_sessions: sessionmaker[Session], sqlite_url: str
) -> None:
    other_process = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseBusy):
            _save(impatient_sessions, _patient(1))
        other_process.execute("ROLLBACK")
    finally:
        other_process.close()
    assert _count(impatient_sessions) == 0


def test_reads_go_on_while_a_write_lock_is_held_elsewhere(
    impatient_sessions: sessionmaker[Session], sqlite_url: str
) -> None:
    other_process = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        other_process.execute(
            "INSERT INTO patient_links (id, ehr_reference, team) VALUES ('x', 'Patient/x', 'north')"
        )
        assert _count(impatient_sessions) == 0
        other_process.execute("COMMIT")
    finally:
        other_process.close()
    assert _count(impatient_sessions) == 1
