"""Set-up shared by the pull, conflict and notification tests.

``sync_world``: the demo caseload stored, pushed to the session's FHIR server under an
identifier system of its own (so tests sharing the server never see each other's resources as
theirs) and linked; plus helpers that act as the other systems editing those resources with
plain httpx. Parametrize it indirectly with "postgresql" to run on PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.caseload import load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.persistence import (
    EntityKind,
    FhirLink,
    OutboxEntry,
    OutboxState,
    Store,
    SyncTarget,
    make_engine,
    migrate,
    unit_of_work,
)
from fhirbridge.persistence.scratch import DatabaseUnavailable, scratch_database, sqlite_url
from fhirbridge.services.caseload import store_caseload
from fhirbridge.services.referral import ReferralTransitionGuard
from fhirbridge.sync.pull import PullHooks, PullReport, pull_changes
from fhirbridge.sync.worker import SyncWorker
from tests.conftest import POSTGRES_URL
from tests.sessions import session_factory

SYNC_FIXTURES = PROJECT_ROOT / "fixtures" / "sync"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
_MAPPINGS: list[Mappings] = []
# The referral service's tracker check, without closing loops (the workflow tests do that).
REFERRAL_GUARDS = PullHooks(guards=(ReferralTransitionGuard(),))


def load_sync_mappings() -> Mappings:
    if not _MAPPINGS:  # loading and checking every mapping file takes a while
        _MAPPINGS.append(load_mappings(PROJECT_ROOT / "mappings"))
    return _MAPPINGS[0]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SyncWorld:
    database_url: str
    base_url: str
    system: str
    mappings: Mappings
    sessions: sessionmaker[Session]

    # -- our side -------------------------------------------------------------------------

    def link(self, kind: EntityKind, local_id: str, resource_type: str) -> FhirLink:
        with unit_of_work(self.sessions) as session:
            link = Store(session).fhir_links.get(SyncTarget(kind, local_id, resource_type))
        assert link is not None, f"{kind.value} {local_id} was not pushed as {resource_type}"
        return link

    def record(self, kind: EntityKind, local_id: str) -> Any:
        with unit_of_work(self.sessions) as session:
            return Store(session).repository(kind).require(local_id)

    def outbox(self, *states: OutboxState) -> list[OutboxEntry]:
        with unit_of_work(self.sessions) as session:
            outbox = Store(session).outbox
            return [entry for state in states for entry in outbox.in_state(state)]

    def pull(
        self,
        *resource_types: str,
        page_size: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> PullReport:
        """Pull with the referral guards; ``transport`` stands between us and the server."""

        async def go() -> PullReport:
            async with FhirClient(self.base_url, max_retries=0, transport=transport) as client:
                return await pull_changes(
                    client=client,
                    sessions=self.sessions,
                    mappings=self.mappings,
                    identifier_system=self.system,
                    resource_types=resource_types,
                    now=now,
                    page_size=page_size,
                    hooks=REFERRAL_GUARDS,
                )

        return anyio.run(go)

    # -- the other systems ----------------------------------------------------------------

    def server_copy(self, kind: EntityKind, local_id: str, resource_type: str) -> dict[str, Any]:
        link = self.link(kind, local_id, resource_type)
        response = httpx.get(f"{self.base_url}/{resource_type}/{link.server_id}", headers=FHIR_JSON)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def edit(
        self, kind: EntityKind, local_id: str, resource_type: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change elements of the server copy as another system would (read, change, PUT)."""
        resource = self.server_copy(kind, local_id, resource_type)
        resource.update(changes)
        return self.put(resource)

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{resource['resourceType']}/{resource['id']}"
        response = httpx.put(url, json=resource, headers=FHIR_JSON)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


def performer_updates() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((SYNC_FIXTURES / "performer_updates.yaml").read_text())
    return loaded


def notification_fixture(name: str) -> dict[str, Any]:
    import json

    loaded: dict[str, Any] = json.loads((SYNC_FIXTURES / "notifications" / name).read_text())
    return loaded


def fulfil(world: SyncWorld, steps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The performer works the referral Task through ``steps``; returns the last version."""
    referral = performer_updates()["referral"]
    current: dict[str, Any] = {}
    for step in steps:
        current = world.edit(EntityKind.REFERRAL, referral, "Task", dict(step))
    return current


def _push_demo(url: str, server: LocalFhirServer, system: str) -> None:
    """Store the demo caseload and push it as it is (the demo job then goes on to change it)."""
    mappings = load_mappings(PROJECT_ROOT / "mappings")
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        caseload = load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml")
        store_caseload(store=Store(session), caseload=caseload)

    async def go() -> None:
        async with FhirClient(server.base_url) as client:
            worker = SyncWorker(
                sessions=sessions,
                client=client,
                mappings=mappings,
                identifier_system=system,
                worker_id="test-setup",
            )
            stats = await worker.drain()
            assert stats.dead == 0, stats.errors

    try:
        anyio.run(go)
    finally:
        engine.dispose()


@pytest.fixture
def sync_world(
    request: pytest.FixtureRequest, tmp_path: Path, fhir_server: LocalFhirServer
) -> Iterator[SyncWorld]:
    backend = getattr(request, "param", "sqlite")
    with ExitStack() as stack:
        if backend == "postgresql":
            try:
                url = stack.enter_context(
                    scratch_database("postgresql", workdir=tmp_path, postgres_url=POSTGRES_URL)
                )
            except DatabaseUnavailable as error:
                pytest.skip(f"PostgreSQL not reachable at {error.url} ({error.reason})")
        else:
            url = sqlite_url(tmp_path / "sync.db")
        system = f"urn:fhirbridge:test-sync-{uuid.uuid4().hex[:12]}"
        _push_demo(url, fhir_server, system)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        yield SyncWorld(
            database_url=url,
            base_url=fhir_server.base_url,
            system=system,
            mappings=load_sync_mappings(),
            sessions=session_factory(engine),
        )
