"""Pushing to a stricter server: transaction size limits, opaque version ids, real references.

The strict proxy (tests/servers/strict.py) refuses a transaction of more than 8 entries with an
OperationOutcome ``too-costly`` saying so, uses UUIDs as version ids, answers 200 to a create by
PUT and refuses dangling references (the EHR's Patients, Practitioners, Conditions and
Organizations are loaded first, as the demo does).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.fhir import FhirClient
from fhirbridge.mapping.concepts import concept_of
from fhirbridge.persistence import (
    EntityKind,
    OutboxState,
    Store,
    SyncTarget,
    make_engine,
    migrate,
    unit_of_work,
)
from fhirbridge.persistence.repositories.server_profiles import ServerProfiles
from fhirbridge.sync.worker import PushStats, SyncWorker, WorkerOptions
from tests.servers.fixtures import StrictServerFactory
from tests.servers.strict import Quirks, StrictFhirServer
from tests.sessions import session_factory, shipped_mappings

pytestmark = pytest.mark.integration
CASELOAD = PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"
EHR = PROJECT_ROOT / "fixtures" / "demo" / "ehr"
SYSTEM = "urn:fhirbridge:strict"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


class CountingClient(FhirClient):
    """Notes the size of every transaction and whether the server took it."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, max_retries=0)
        self.transactions: list[tuple[int, bool]] = []

    async def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        size = len(bundle.get("entry") or [])
        try:
            response = await super().transaction(bundle)
        except Exception:
            self.transactions.append((size, False))
            raise
        self.transactions.append((size, True))
        return response


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'strict.db'}"
    migrate(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    with unit_of_work(factory) as session:
        store = Store(session)
        caseload = load_caseload(CASELOAD)
        for record in (*caseload.patients, *caseload.members, *caseload.care_records()):
            store.save(record)
    yield factory
    engine.dispose()


@pytest.fixture
def server(strict_server_factory: StrictServerFactory) -> StrictFhirServer:
    strict = strict_server_factory(Quirks(max_transaction_entries=8))
    for path in sorted(EHR.glob("*.json")):  # the EHR's side, straight into the server behind
        resource = json.loads(path.read_text())
        url = f"{strict.upstream.base_url}/{resource['resourceType']}/{resource['id']}"
        httpx.put(url, json=resource, headers=FHIR_JSON, timeout=30).raise_for_status()
    return strict


def _push(
    sessions: sessionmaker[Session], base_url: str
) -> tuple[PushStats, CountingClient, int | None]:
    async def go() -> tuple[PushStats, CountingClient, int | None]:
        async with CountingClient(base_url) as client:
            worker = SyncWorker(
                sessions=sessions,
                client=client,
                mappings=shipped_mappings(),
                identifier_system=SYSTEM,
                worker_id="strict-test",
                options=WorkerOptions(batch_size=200, concurrency=1),
            )
            stats = await worker.drain(patience=3)
            return stats, client, worker.transaction_limit

    return anyio.run(go)


def _states(sessions: sessionmaker[Session]) -> dict[OutboxState, int]:
    with sessions() as session:
        return Store(session).outbox.counts()


def test_a_server_limited_to_8_entries_gets_every_record_in_transactions_of_at_most_8(
    sessions: sessionmaker[Session], server: StrictFhirServer
) -> None:
    stats, client, learned = _push(sessions, server.base_url)

    assert (stats.dead, stats.conflicts) == (0, 0), stats.errors
    states = _states(sessions)
    assert states[OutboxState.DONE] == sum(states.values())
    accepted = [size for size, ok in client.transactions if ok]
    assert learned == 8
    assert max(accepted) <= 8
    assert sum(size > 1 for size in accepted) > len(accepted) / 2, client.transactions
    assert _identifiers_on_server(server) == _identifiers_of(load_caseload(CASELOAD))


def test_the_learned_transaction_size_is_kept_in_the_servers_profile_for_the_next_run(
    sessions: sessionmaker[Session], server: StrictFhirServer
) -> None:
    _push(sessions, server.base_url)
    _save_changed_goals(sessions, load_caseload(CASELOAD))

    stats, client, learned = _push(sessions, server.base_url)

    with sessions() as session:
        profile = ServerProfiles(session).get(server.base_url)
    assert profile is not None
    assert profile.max_transaction_entries == 8
    assert learned == 8
    assert stats.pushed > 0
    assert all(ok for _, ok in client.transactions), client.transactions


def test_updates_with_opaque_version_ids_go_through_with_if_match(
    sessions: sessionmaker[Session], server: StrictFhirServer
) -> None:
    _push(sessions, server.base_url)
    goal = load_caseload(CASELOAD).goals[0]
    target = SyncTarget(EntityKind.GOAL, goal.id, "Goal")
    with sessions() as session:
        before = Store(session).fhir_links.get(target)
    with unit_of_work(sessions) as session:
        Store(session).save(dataclasses.replace(goal, description="HbA1c below 6.8%"))

    stats, _, _ = _push(sessions, server.base_url)

    with sessions() as session:
        after = Store(session).fhir_links.get(target)
    assert before is not None
    assert after is not None
    assert (stats.pushed, stats.conflicts) == (1, 0), stats.errors
    assert after.version_id
    assert before.version_id
    assert after.version_id != before.version_id
    assert not after.version_id.isdigit()
    on_server = httpx.get(f"{server.base_url}/Goal/{after.server_id}", headers=FHIR_JSON).json()
    assert on_server["description"]["text"] == "HbA1c below 6.8%"
    assert on_server["meta"]["versionId"] == after.version_id


def _save_changed_goals(sessions: sessionmaker[Session], caseload: Caseload) -> None:
    with unit_of_work(sessions) as session:
        store = Store(session)
        for goal in caseload.goals:
            store.save(dataclasses.replace(goal, description=f"{goal.description} (revised)"))
        for plan in caseload.care_plans:
            store.save(dataclasses.replace(plan, title=f"{plan.title} (revised)"))


def _identifiers_of(caseload: Caseload) -> list[str]:
    """Every resource the caseload syncs as, by business identifier."""
    mappings = shipped_mappings()
    return sorted(
        f"{resource_type}|{mappings.get(concept_of(r), resource_type).identifier_prefix}/{r.id}"
        for r in caseload.care_records()
        for resource_type in mappings.plan.targets(concept_of(r))
    )


def _identifiers_on_server(server: StrictFhirServer) -> list[str]:
    """Ours on the server (one entry per resource, so a duplicate shows twice)."""
    found = []
    for resource_type in sorted(set(shipped_mappings().plan.primary_resources.values()) | {"Task"}):
        url = f"{server.upstream.base_url}/{resource_type}"
        bundle = httpx.get(url, params={"_count": "1000"}, headers=FHIR_JSON, timeout=30).json()
        for entry in bundle.get("entry", []):
            for identifier in entry.get("resource", {}).get("identifier", []):
                if identifier.get("system") == SYSTEM:
                    found.append(f"{resource_type}|{identifier['value']}")
    return sorted(found)


def test_a_record_the_server_refuses_is_a_dead_letter_with_its_outcome_and_the_rest_goes(
    sessions: sessionmaker[Session], server: StrictFhirServer
) -> None:
    goal = load_caseload(CASELOAD).goals[0]
    with unit_of_work(sessions) as session:  # a problem the EHR does not have
        Store(session).save(dataclasses.replace(goal, addresses=["Condition/ehr-404"]))

    stats, client, _ = _push(sessions, server.base_url)

    with sessions() as session:
        (dead,) = Store(session).outbox.dead_letters()
    assert (dead.entity_kind, dead.local_id, stats.dead) == (EntityKind.GOAL, goal.id, 1)
    assert dead.last_outcome is not None
    assert "Condition/ehr-404" in json.dumps(dead.last_outcome)
    states = _states(sessions)
    assert states[OutboxState.DONE] == sum(states.values()) - 1
    accepted = [size for size, ok in client.transactions if ok]
    assert sum(size > 1 for size in accepted) > len(accepted) / 2, client.transactions
