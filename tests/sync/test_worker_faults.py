"""Faults do not lose or double records: a killed worker, a killed server, two workers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.persistence import (
    OutboxState,
    Store,
    make_engine,
    make_session_factory,
    migrate,
    unit_of_work,
)
from fhirbridge.persistence.scratch import DatabaseUnavailable, scratch_database
from fhirbridge.services.caseload import store_caseload
from fhirbridge.sync.worker import PushStats, SyncWorker, WorkerOptions
from fhirbridge.synthetic import synthetic_caseload
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.integration
PATIENTS = 120
TYPES = ("EpisodeOfCare", "Consent", "Goal", "CarePlan", "Task", "Encounter")
FHIRBRIDGE = str(Path(sys.executable).with_name("fhirbridge"))


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(PROJECT_ROOT / "mappings")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalFhirServer]:
    """A server of the test's own, so totals on it count exactly this test's records."""
    with LocalFhirServer(workdir=tmp_path / "sekmet") as running:
        yield running


def _load(url: str, mappings: Mappings) -> sessionmaker[Session]:
    sessions = make_session_factory(make_engine(url))
    with unit_of_work(sessions) as session:
        store_caseload(
            store=Store(session), caseload=synthetic_caseload(PATIENTS), mappings=mappings
        )
    return sessions


def _totals(base_url: str) -> dict[str, int]:
    return {
        t: httpx.get(f"{base_url}/{t}", params={"_summary": "count"}, timeout=30).json()["total"]
        for t in TYPES
    }


def _states(sessions: sessionmaker[Session]) -> dict[OutboxState, int]:
    with sessions() as session:
        return Store(session).outbox.counts()


def _errors(sessions: sessionmaker[Session]) -> list[str | None]:
    with sessions() as session:
        return [e.last_error for e in Store(session).outbox.in_state(OutboxState.PENDING)][:5]


def _worker(db_url: str, base_url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FHIRBRIDGE_IDENTIFIER_SYSTEM": "urn:fhirbridge:faults",
        "FHIRBRIDGE_FHIR_MAX_RETRIES": "1",
    }
    return subprocess.Popen(
        [FHIRBRIDGE, "sync", "push", "--database-url", db_url, "--fhir-url", base_url, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout}s")


def test_a_worker_killed_mid_batch_leaves_every_record_on_the_server_exactly_once(
    tmp_path: Path, mappings: Mappings, server: LocalFhirServer
) -> None:
    db_url = f"sqlite:///{tmp_path / 'kill.db'}"
    migrate(db_url)
    sessions = _load(db_url, mappings)
    first = _worker(db_url, server.base_url, "--once", "--batch-size", "25")
    _wait_until(lambda: _states(sessions)[OutboxState.DONE] >= 50, timeout=120)

    first.send_signal(signal.SIGKILL)
    first.wait()
    interrupted = _states(sessions)
    resumed = _worker(db_url, server.base_url, "--once", "--lease-seconds", "0")

    assert resumed.wait(timeout=300) == 0
    assert interrupted[OutboxState.PENDING] + interrupted[OutboxState.IN_FLIGHT] > 0
    states = _states(sessions)
    assert (states[OutboxState.PENDING], states[OutboxState.DEAD]) == (0, 0), _errors(sessions)
    assert _totals(server.base_url) == dict.fromkeys(TYPES, PATIENTS)


def test_a_server_killed_mid_push_delays_the_push_and_loses_nothing(
    tmp_path: Path, mappings: Mappings, server: LocalFhirServer
) -> None:
    db_url = f"sqlite:///{tmp_path / 'outage.db'}"
    migrate(db_url)
    sessions = _load(db_url, mappings)
    worker = _worker(db_url, server.base_url, "--worker", "--batch-size", "25")
    try:
        _wait_until(lambda: _states(sessions)[OutboxState.DONE] >= 50, timeout=120)
        server.kill()
        time.sleep(1.5)  # the worker keeps trying against a dead server
        server.start()
        _wait_until(
            lambda: (
                _states(sessions)[OutboxState.PENDING] + _states(sessions)[OutboxState.IN_FLIGHT]
                == 0
            ),
            timeout=240,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)

    assert _totals(server.base_url) == dict.fromkeys(TYPES, PATIENTS)
    assert _states(sessions)[OutboxState.DEAD] == 0


@pytest.fixture
def postgres_db(tmp_path: Path) -> Iterator[str]:
    try:
        with scratch_database("postgresql", workdir=tmp_path, postgres_url=POSTGRES_URL) as url:
            yield url
    except DatabaseUnavailable as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")


def test_two_workers_on_postgresql_never_push_the_same_entry(
    postgres_db: str, mappings: Mappings, server: LocalFhirServer
) -> None:
    engine = make_engine(postgres_db)
    sessions = make_session_factory(engine)
    try:
        with unit_of_work(sessions) as session:
            caseload = synthetic_caseload(PATIENTS)
            store_caseload(store=Store(session), caseload=caseload, mappings=mappings)

        stats = anyio.run(_two_workers, sessions, mappings, server.base_url)

        with sessions() as session:
            claimants = {
                row[0] for row in session.execute(text("SELECT DISTINCT claimed_by FROM outbox"))
            }
            done = Store(session).outbox.counts()[OutboxState.DONE]
    finally:
        engine.dispose()
    assert claimants == {"worker-a", "worker-b"}
    assert sum(s.pushed + s.unchanged for s in stats) == done
    assert _totals(server.base_url) == dict.fromkeys(TYPES, PATIENTS)


async def _two_workers(
    sessions: sessionmaker[Session], mappings: Mappings, base_url: str
) -> list[PushStats]:
    results: list[PushStats] = []

    async def one(name: str) -> None:
        async with FhirClient(base_url, max_retries=1) as client:
            worker = SyncWorker(
                sessions=sessions,
                client=client,
                mappings=mappings,
                identifier_system="urn:fhirbridge:two-workers",
                worker_id=name,
                options=WorkerOptions(batch_size=15),
            )
            results.append(await worker.drain())

    async with anyio.create_task_group() as group:
        group.start_soon(one, "worker-a")
        group.start_soon(one, "worker-b")
    return results
