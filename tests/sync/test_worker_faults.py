"""Faults do not lose or double records: a killed worker, a killed server, two workers at once."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
    migrate,
    unit_of_work,
)
from fhirbridge.persistence.scratch import DatabaseUnavailable, scratch_database
from fhirbridge.services.caseload import store_caseload
from fhirbridge.sync.links import content_hash
from fhirbridge.sync.worker import PushStats, SyncWorker, WorkerOptions
from fhirbridge.synthetic import synthetic_caseload
from tests.conftest import POSTGRES_URL
from tests.sessions import session_factory

pytestmark = pytest.mark.integration
PATIENTS = 120
TYPES = ("EpisodeOfCare", "Consent", "Goal", "CarePlan", "Task", "Encounter")
FHIRBRIDGE = str(Path(sys.executable).with_name("fhirbridge"))
SYSTEM = "urn:fhirbridge:faults"
BATCH = 25  # entries per claimed batch: at most one batch is lost with a killed process


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(PROJECT_ROOT / "mappings")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalFhirServer]:
    """A server of the test's own, so totals on it count exactly this test's records."""
    with LocalFhirServer(workdir=tmp_path / "sekmet") as running:
        yield running


def _load(url: str, mappings: Mappings) -> sessionmaker[Session]:
    sessions = session_factory(make_engine(url))
    with unit_of_work(sessions) as session:
        store_caseload(store=Store(session), caseload=synthetic_caseload(PATIENTS))
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
        "FHIRBRIDGE_IDENTIFIER_SYSTEM": SYSTEM,
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


def test_a_worker_killed_mid_batch_and_restarted_at_once_leaves_every_record_once_and_complete(
    tmp_path: Path, mappings: Mappings, server: LocalFhirServer
) -> None:
    db_url = f"sqlite:///{tmp_path / 'kill.db'}"
    migrate(db_url)
    sessions = _load(db_url, mappings)
    first = _worker(db_url, server.base_url, "--once", "--batch-size", str(BATCH))
    _wait_until(lambda: _states(sessions)[OutboxState.DONE] >= 50, timeout=120)

    first.send_signal(signal.SIGKILL)
    first.wait()
    interrupted = _states(sessions)
    # Restarted at once, as a supervisor would, with the default lease: the killed worker's
    # claim stands for five minutes. The run must still end, without going round.
    resumed = _worker(db_url, server.base_url, "--once")
    assert resumed.wait(timeout=180) == 0
    waiting = _states(sessions)
    # Then the lease has passed (simulated: the next run treats every claim as stale).
    after_lease = _worker(db_url, server.base_url, "--once", "--lease-seconds", "0")

    assert after_lease.wait(timeout=300) == 0
    assert interrupted[OutboxState.IN_FLIGHT] > 0
    assert waiting[OutboxState.DEAD] == 0, _errors(sessions)
    states = _states(sessions)
    assert (states[OutboxState.PENDING], states[OutboxState.DEAD]) == (0, 0), _errors(sessions)
    assert states[OutboxState.IN_FLIGHT] == 0
    _assert_on_server_once_and_complete(server.base_url)


def test_a_server_killed_mid_push_delays_the_push_and_loses_nothing(
    tmp_path: Path, mappings: Mappings, server: LocalFhirServer
) -> None:
    db_url = f"sqlite:///{tmp_path / 'outage.db'}"
    migrate(db_url)
    sessions = _load(db_url, mappings)
    worker = _worker(db_url, server.base_url, "--worker", "--batch-size", str(BATCH))
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

    assert _states(sessions)[OutboxState.DEAD] == 0
    _assert_on_server_once_and_complete(server.base_url)


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
    sessions = session_factory(engine)
    try:
        with unit_of_work(sessions) as session:
            caseload = synthetic_caseload(PATIENTS)
            store_caseload(store=Store(session), caseload=caseload)

        stats = anyio.run(_two_workers, sessions, mappings, server.base_url)

        with sessions() as session:
            claimants = {
                row[0] for row in session.execute(text("SELECT DISTINCT claimed_by FROM outbox"))
            }
            done = Store(session).outbox.counts()[OutboxState.DONE]
    finally:
        engine.dispose()
    assert claimants == {"worker-a", "worker-b"}
    # Every entry settled by exactly one of them (a record written without references still
    # to come is written again to complete it: that second write settles it).
    assert sum(s.pushed - s.incomplete + s.unchanged for s in stats) == done
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


# -- what "nothing lost, nothing doubled" means on the server --------------------------------


def _resources(base_url: str, resource_type: str) -> list[dict[str, Any]]:
    """Every resource of a type, page by page."""
    found: list[dict[str, Any]] = []
    url: str | None = f"{base_url}/{resource_type}?_count=500"
    while url:
        bundle = httpx.get(url, timeout=60).json()
        found += [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
        url = next(
            (link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None
        )
    return [r for r in found if r.get("resourceType") == resource_type]


def _ours(resource: dict[str, Any]) -> str | None:
    return next(
        (i["value"] for i in resource.get("identifier", []) if i.get("system") == SYSTEM), None
    )


def _history(base_url: str, resource: dict[str, Any]) -> list[str]:
    """Content hashes of a resource's versions, oldest first."""
    url = f"{base_url}/{resource['resourceType']}/{resource['id']}/_history"
    bundle = httpx.get(url, params={"_count": "100"}, timeout=60).json()
    versions = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
    versions.sort(key=lambda v: v["meta"]["lastUpdated"])
    return [content_hash(v) for v in versions]


def _assert_on_server_once_and_complete(base_url: str) -> None:
    """Every record once (by business identifier), every internal reference present and
    resolving, and no two consecutive identical versions beyond one re-push of a lost batch."""
    by_type = {t: _resources(base_url, t) for t in TYPES}
    for resource_type, resources in by_type.items():
        identifiers = Counter(_ours(r) for r in resources)
        assert set(identifiers.values()) == {1}, (resource_type, identifiers.most_common(3))
        assert len(identifiers) == PATIENTS, resource_type
    ids = {t: {r["id"] for r in resources} for t, resources in by_type.items()}

    def resolves(reference: dict[str, Any] | None, resource_type: str) -> bool:
        kind, _, server_id = str((reference or {}).get("reference", "")).partition("/")
        return kind == resource_type and server_id in ids[resource_type]

    for plan in by_type["CarePlan"]:
        assert [resolves(a.get("reference"), "Task") for a in plan.get("activity", [])] == [True]
        assert [resolves(g, "Goal") for g in plan.get("goal", [])] == [True]
    for task in by_type["Task"]:
        assert [resolves(b, "CarePlan") for b in task.get("basedOn", [])] == [True]
    for encounter in by_type["Encounter"]:
        assert [resolves(e, "EpisodeOfCare") for e in encounter["episodeOfCare"]] == [True]
    repeats = [
        sum(a == b for a, b in itertools.pairwise(versions))
        for resources in by_type.values()
        for versions in (_history(base_url, r) for r in resources)
    ]
    assert max(repeats) <= 1
    assert sum(repeats) <= BATCH
