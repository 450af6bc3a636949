"""Claims and references survive a dead worker and cancellation.

A dead worker's claim keeps its entries in flight until the lease ends. Records referencing
them wait: nothing is sent twice with the same content, ``drain`` still ends, and a waiting
record is not given up before the lease could have freed what it waits for. A cancelled batch
gives its claim back at once.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.caseload import load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.persistence import (
    EntityKind,
    OutboxEntry,
    OutboxState,
    Store,
    SyncTarget,
    make_engine,
    migrate,
    unit_of_work,
)
from fhirbridge.services.caseload import store_caseload
from fhirbridge.sync.links import content_hash
from fhirbridge.sync.worker import PushStats, SyncWorker, WorkerOptions
from tests.sessions import session_factory, shipped_mappings

pytestmark = pytest.mark.integration
CASELOAD = PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"
LEASE = timedelta(minutes=5)  # the default


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'waiting.db'}"
    migrate(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    with unit_of_work(factory) as session:
        store_caseload(store=Store(session), caseload=load_caseload(CASELOAD))
    yield factory
    engine.dispose()


def _worker(
    sessions: sessionmaker[Session],
    client: FhirClient,
    system: str,
    *,
    lease: timedelta = LEASE,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SyncWorker:
    return SyncWorker(
        sessions=sessions,
        client=client,
        mappings=shipped_mappings(),
        identifier_system=system,
        worker_id="live-worker",
        options=WorkerOptions(batch_size=200, lease=lease, defer_seconds=0.2),
        clock=clock,
    )


def _drain(sessions: sessionmaker[Session], base_url: str, system: str, **kw: Any) -> PushStats:
    async def go() -> PushStats:
        async with FhirClient(base_url, max_retries=0) as client:
            with anyio.fail_after(120):  # drain must end on its own
                return await _worker(sessions, client, system, **kw).drain(patience=2)

    return anyio.run(go)


def _claimed_by_a_dead_worker(sessions: sessionmaker[Session], kind: EntityKind) -> None:
    """As if a worker had claimed every entry of ``kind`` just now and then been killed."""
    with unit_of_work(sessions) as session:
        session.execute(
            text(
                "UPDATE outbox SET state = 'in_flight', claimed_by = 'killed-worker', "
                "claimed_at = :now, attempts = 1 WHERE entity_kind = :kind"
            ),
            {"now": datetime.now(UTC), "kind": kind.value},
        )


def _entries(sessions: sessionmaker[Session], kind: EntityKind) -> list[OutboxEntry]:
    with sessions() as session:
        outbox = Store(session).outbox
        return [e for state in OutboxState for e in outbox.in_state(state) if e.entity_kind is kind]


def _history(base_url: str, resource_type: str, server_id: str) -> list[dict[str, Any]]:
    """The versions of a resource, oldest first."""
    bundle = httpx.get(f"{base_url}/{resource_type}/{server_id}/_history", timeout=30).json()
    versions = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
    return sorted(versions, key=lambda r: r["meta"]["lastUpdated"])


def _care_plan_versions(
    sessions: sessionmaker[Session], base_url: str
) -> dict[str, list[dict[str, Any]]]:
    plans = [p.id for p in load_caseload(CASELOAD).care_plans]
    with sessions() as session:
        links = Store(session).fhir_links.get_many(
            SyncTarget(EntityKind.CARE_PLAN, plan, "CarePlan") for plan in plans
        )
    return {t.local_id: _history(base_url, "CarePlan", link.server_id) for t, link in links.items()}


def _repeats(versions: list[dict[str, Any]]) -> int:
    hashes = [content_hash(v) for v in versions]
    return sum(1 for a, b in itertools.pairwise(hashes) if a == b)


def test_records_waiting_for_a_dead_workers_claim_are_sent_once_and_drain_still_ends(
    sessions: sessionmaker[Session], fhir_server: LocalFhirServer
) -> None:
    system = "urn:fhirbridge:waiting-dead-claim"
    _claimed_by_a_dead_worker(sessions, EntityKind.CARE_TASK)

    stats = _drain(sessions, fhir_server.base_url, system)

    assert stats.dead == 0, stats.errors
    plans = _care_plan_versions(sessions, fhir_server.base_url)
    assert plans
    assert all(len(versions) == 1 for versions in plans.values())
    assert {e.state for e in _entries(sessions, EntityKind.CARE_TASK)} == {OutboxState.IN_FLIGHT}
    # Sent once without their activities, the plans wait to be completed.
    assert {e.state for e in _entries(sessions, EntityKind.CARE_PLAN)} == {OutboxState.PENDING}


def test_once_the_lease_frees_the_claim_every_reference_is_completed_without_repeats(
    sessions: sessionmaker[Session], fhir_server: LocalFhirServer
) -> None:
    system = "urn:fhirbridge:waiting-after-lease"
    _claimed_by_a_dead_worker(sessions, EntityKind.CARE_TASK)
    _drain(sessions, fhir_server.base_url, system)

    stats = _drain(sessions, fhir_server.base_url, system, lease=timedelta(0))  # lease over

    assert stats.dead == 0, stats.errors
    with sessions() as session:
        counts = Store(session).outbox.counts()
        plan = Store(session).care_plans.require("cp-1001")
    assert counts[OutboxState.DONE] == sum(counts.values())
    versions = _care_plan_versions(sessions, fhir_server.base_url)
    assert all(_repeats(v) == 0 for v in versions.values())
    activity = [a["reference"]["reference"] for a in versions["cp-1001"][-1]["activity"]]
    assert len(activity) == len(plan.task_ids) + len(plan.referral_ids)
    assert sum(ref.startswith("Task/") for ref in activity) == len(plan.task_ids)


def test_a_waiting_record_is_not_given_up_before_a_lease_could_have_freed_its_target(
    sessions: sessionmaker[Session], fhir_server: LocalFhirServer
) -> None:
    # Encounters point back at their enrollment (episodeOfCare): they wait for it.
    _claimed_by_a_dead_worker(sessions, EntityKind.ENROLLMENT)
    started = datetime.now(UTC)
    now = [started]

    async def go() -> datetime:
        async with FhirClient(fhir_server.base_url, max_retries=0) as client:
            worker = _worker(sessions, client, "urn:fhirbridge:waiting-limit", clock=lambda: now[0])
            while now[0] - started < 3 * LEASE:
                await worker.run_once()
                with sessions() as session:
                    outbox = Store(session).outbox
                    if any(e.entity_kind is EntityKind.TIME_ENTRY for e in outbox.dead_letters()):
                        return now[0]
                    due = outbox.next_due()
                assert due is not None
                now[0] = max(now[0], due)  # nothing happens in between: jump there
            raise AssertionError("the waiting record was never given up")

    given_up_at = anyio.run(go)

    assert given_up_at - started >= LEASE
    with sessions() as session:
        dead = [e for e in Store(session).outbox.dead_letters()]
    assert EntityKind.TIME_ENTRY in {e.entity_kind for e in dead}
    # Records referencing those waited too (a chain), none was sent without its reference.
    assert all((e.last_error or "").startswith("still waiting for ") for e in dead)
    encounters = [e.last_error or "" for e in dead if e.entity_kind is EntityKind.TIME_ENTRY]
    assert all("waiting for enrollment" in reason for reason in encounters), encounters


def test_a_cancelled_batch_gives_its_claim_back_at_once_without_counting_an_attempt(
    sessions: sessionmaker[Session],
) -> None:
    silent = socket.socket()  # accepts connections, never answers: a request hangs
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    base_url = f"http://127.0.0.1:{silent.getsockname()[1]}/fhir"

    async def go() -> None:
        async with FhirClient(base_url, max_retries=0, timeout=600) as client:
            worker = _worker(sessions, client, "urn:fhirbridge:cancelled")
            draining = asyncio.ensure_future(worker.drain())
            while not any(e.state is OutboxState.IN_FLIGHT for e in _all(sessions)):
                await asyncio.sleep(0.05)
            draining.cancel()
            with pytest.raises(asyncio.CancelledError):
                await draining

    try:
        asyncio.run(go())
    finally:
        silent.close()

    entries = _all(sessions)
    assert {e.state for e in entries} == {OutboxState.PENDING}
    assert {e.attempts for e in entries} == {0}


def _all(sessions: sessionmaker[Session]) -> list[OutboxEntry]:
    with sessions() as session:
        outbox = Store(session).outbox
        return [e for state in OutboxState for e in outbox.in_state(state)]


def test_a_recovered_lost_write_still_waits_to_complete_its_references(
    sessions: sessionmaker[Session], fhir_server: LocalFhirServer
) -> None:
    system = "urn:fhirbridge:waiting-lost-write"
    _claimed_by_a_dead_worker(sessions, EntityKind.CARE_TASK)
    _drain(sessions, fhir_server.base_url, system)  # the plan goes once without its tasks
    with unit_of_work(sessions) as session:
        # As if the answer to that push had been lost: we still hold the version before it,
        # so the re-push fails its If-Match although the server has exactly our content.
        session.execute(
            text(
                "UPDATE fhir_links SET version_id = '0', content_hash = NULL "
                "WHERE entity_kind = 'care_plan' AND local_id = 'cp-1001'"
            )
        )
        session.execute(
            text(
                "UPDATE outbox SET next_attempt_at = :now "
                "WHERE entity_kind = 'care_plan' AND local_id = 'cp-1001' AND state = 'pending'"
            ),
            {"now": datetime.now(UTC)},
        )

    recovered = _drain(sessions, fhir_server.base_url, system)

    assert (recovered.conflicts, recovered.dead) == (0, 0), recovered.errors
    (entry,) = [e for e in _entries(sessions, EntityKind.CARE_PLAN) if e.local_id == "cp-1001"]
    assert entry.state is OutboxState.PENDING  # not done: its tasks are still to come
    _drain(sessions, fhir_server.base_url, system, lease=timedelta(0))
    versions = _care_plan_versions(sessions, fhir_server.base_url)["cp-1001"]
    assert _repeats(versions) == 0  # the re-push was refused, not written again
    assert (
        sum(a["reference"]["reference"].startswith("Task/") for a in versions[-1]["activity"]) == 2
    )
