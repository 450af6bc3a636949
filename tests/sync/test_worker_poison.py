"""A record that cannot be prepared is a dead letter of its own; it never stops the others.

Poison here is what the API lets through today: a goal naming a care-team member that does not
exist (the people repository raises ``RecordNotFound`` while mapping), and an outbox entry whose
record has vanished. Whatever the mix, the other records reach the server, the poison ones are
dead letters naming kind, id and field, and no entry is left in flight.
"""

from __future__ import annotations

import dataclasses
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import Goal
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.persistence import OutboxState, Store, make_engine, migrate, unit_of_work
from fhirbridge.services.caseload import store_caseload
from fhirbridge.sync.worker import PushStats, SyncWorker, WorkerOptions
from tests.sessions import session_factory, shipped_mappings

pytestmark = pytest.mark.integration
CASELOAD = PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"


def _sessions(path: Path) -> tuple[sessionmaker[Session], Callable[[], None]]:
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    return session_factory(engine), engine.dispose


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    factory, dispose = _sessions(tmp_path / "poison.db")
    yield factory
    dispose()


def _drain(sessions: sessionmaker[Session], base_url: str, system: str) -> PushStats:
    async def go() -> PushStats:
        async with FhirClient(base_url, max_retries=0) as client:
            worker = SyncWorker(
                sessions=sessions,
                client=client,
                mappings=shipped_mappings(),
                identifier_system=system,
                worker_id="poison-test",
                options=WorkerOptions(batch_size=50),
            )
            return await worker.drain(patience=2)

    return anyio.run(go)


def _states(sessions: sessionmaker[Session]) -> dict[OutboxState, int]:
    with sessions() as session:
        return Store(session).outbox.counts()


def _goal_identifiers_on_server(base_url: str, system: str) -> list[str]:
    bundle = httpx.get(f"{base_url}/Goal", params={"_count": "1000"}, timeout=30).json()
    return sorted(
        ident["value"]
        for entry in bundle.get("entry", [])
        for ident in entry["resource"].get("identifier", [])
        if ident.get("system") == system
    )


def test_a_goal_naming_a_missing_care_team_member_is_a_dead_letter_and_the_rest_is_pushed(
    sessions: sessionmaker[Session], fhir_server: LocalFhirServer
) -> None:
    caseload = load_caseload(CASELOAD)
    ghostly = dataclasses.replace(caseload.goals[0], expressed_by="ghost")
    caseload.goals[0] = ghostly
    with unit_of_work(sessions) as session:
        entries = store_caseload(store=Store(session), caseload=caseload)

    stats = _drain(sessions, fhir_server.base_url, f"urn:fhirbridge:poison-{uuid.uuid4().hex}")

    with sessions() as session:
        (dead,) = Store(session).outbox.dead_letters()
    assert (dead.entity_kind.value, dead.local_id) == ("goal", ghostly.id)
    assert dead.last_error == f"goal {ghostly.id}: expressed_by: no care-team member 'ghost'"
    states = _states(sessions)
    assert (states[OutboxState.IN_FLIGHT], states[OutboxState.PENDING]) == (0, 0)
    assert (states[OutboxState.DONE], stats.dead) == (entries - 1, 1)


def _goals(caseload: Caseload, poison: Sequence[str | None], run: str) -> list[Goal]:
    template = caseload.goals[0]
    return [
        dataclasses.replace(
            template,
            id=f"{run}-g{i}",
            description=f"goal {i}",
            expressed_by="ghost" if kind == "ghost" else template.expressed_by,
        )
        for i, kind in enumerate(poison)
    ]


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(poison=st.lists(st.sampled_from([None, None, "ghost", "vanished"]), min_size=1, max_size=9))
def test_n_records_with_k_poison_ones_push_exactly_n_minus_k_and_leave_k_dead_none_in_flight(
    poison: list[str | None], fhir_server: LocalFhirServer
) -> None:
    run = uuid.uuid4().hex[:10]
    system = f"urn:fhirbridge:poison-{run}"
    caseload = load_caseload(CASELOAD)
    goals = _goals(caseload, poison, run)
    with tempfile.TemporaryDirectory() as folder:
        sessions, dispose = _sessions(Path(folder) / "property.db")
        try:
            with unit_of_work(sessions) as session:
                store = Store(session)
                for person in (*caseload.patients, *caseload.members):
                    store.save(person)
                for goal in goals:
                    store.save(goal)
                for goal, kind in zip(goals, poison, strict=True):
                    if kind == "vanished":  # its outbox entry stays
                        session.execute(text("DELETE FROM goals WHERE id = :id"), {"id": goal.id})

            _drain(sessions, fhir_server.base_url, system)

            states = _states(sessions)
        finally:
            dispose()
    healthy = sorted(f"goal/{g.id}" for g, kind in zip(goals, poison, strict=True) if not kind)
    assert _goal_identifiers_on_server(fhir_server.base_url, system) == healthy
    assert states[OutboxState.DEAD] == sum(1 for kind in poison if kind)
    assert (states[OutboxState.IN_FLIGHT], states[OutboxState.PENDING]) == (0, 0)
