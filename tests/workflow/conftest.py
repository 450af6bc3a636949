"""The closed referral loop end to end: the REST API on a scratch database, the push worker and
the pull against the session's real FHIR server, and the performer as another system editing
the referral Task with plain httpx.

Each test gets its own identifier system, so resources other tests put on the shared server are
never taken for ours.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.api import create_app
from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.persistence import (
    EntityKind,
    OutboxState,
    Store,
    SyncTarget,
    make_engine,
    unit_of_work,
)
from fhirbridge.persistence.scratch import scratch_database
from fhirbridge.services.referral import LoopPolicy, referral_pull_hooks
from fhirbridge.sync.pull import PullReport, pull_changes
from fhirbridge.sync.worker import PushStats, SyncWorker
from tests.api.support import (
    AUDIENCE,
    ISSUER,
    FakeClock,
    Tokens,
    care_manager,
    load_caseload,
    rsa_key,
    write_jwks,
)
from tests.conftest import POSTGRES_URL
from tests.servers.fixtures import StrictServerFactory
from tests.servers.strict import Quirks
from tests.sessions import session_factory

WORKFLOW = PROJECT_ROOT / "fixtures" / "workflow"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
FOLLOW_UP_DAYS = 5


def fixture_json(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((WORKFLOW / name).read_text())
    return loaded


def performer_steps(name: str) -> list[dict[str, Any]]:
    loaded: dict[str, list[dict[str, Any]]] = yaml.safe_load(
        (WORKFLOW / "performer.yaml").read_text()
    )
    return loaded[name]


@dataclass
class ReferralLoop:
    """Our side (API, worker, pull) and the performer's (httpx on the server)."""

    api: TestClient
    headers: dict[str, str]
    base_url: str
    system: str
    mappings: Mappings
    sessions: sessionmaker[Session]
    clock: FakeClock

    # -- our side -------------------------------------------------------------------------

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.api.post(path, json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def send_referral(self, **changes: Any) -> dict[str, Any]:
        return self.post("/referrals", {**fixture_json("loop_referral.json"), **changes})

    def drain(self) -> PushStats:
        async def go() -> PushStats:
            async with FhirClient(self.base_url, max_retries=0) as client:
                worker = SyncWorker(
                    sessions=self.sessions,
                    client=client,
                    mappings=self.mappings,
                    identifier_system=self.system,
                    worker_id="workflow-test",
                    clock=lambda: datetime.now(UTC),
                )
                return await worker.drain(patience=0)

        return anyio.run(go)

    def pull(self) -> PullReport:
        hooks = referral_pull_hooks(
            clock=self.clock, policy=LoopPolicy(follow_up_days=FOLLOW_UP_DAYS)
        )

        async def go() -> PullReport:
            async with FhirClient(self.base_url, max_retries=0) as client:
                return await pull_changes(
                    client=client,
                    sessions=self.sessions,
                    mappings=self.mappings,
                    identifier_system=self.system,
                    resource_types=["Task"],
                    now=lambda: datetime.now(UTC),
                    hooks=hooks,
                )

        return anyio.run(go)

    def record(self, kind: EntityKind, local_id: str) -> Any:
        with unit_of_work(self.sessions) as session:
            return Store(session).repository(kind).require(local_id)

    def follow_ups(self, patient_id: str) -> list[Any]:
        with unit_of_work(self.sessions) as session:
            tasks = Store(session).care_tasks.list_for_patient(patient_id)
        return [t for t in tasks if t.kind is not None and t.kind.value == "follow-up"]

    def waiting(self) -> list[SyncTarget]:
        with unit_of_work(self.sessions) as session:
            outbox = Store(session).outbox
            return [e.target for e in outbox.in_state(OutboxState.PENDING)]

    # -- the server, as the performer sees it ---------------------------------------------

    def server_copy(self, kind: EntityKind, local_id: str, resource_type: str) -> dict[str, Any]:
        with unit_of_work(self.sessions) as session:
            link = Store(session).fhir_links.get(SyncTarget(kind, local_id, resource_type))
        assert link is not None, f"{kind.value} {local_id} was not pushed as {resource_type}"
        response = httpx.get(f"{self.base_url}/{resource_type}/{link.server_id}", headers=FHIR_JSON)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def perform(self, referral_id: str, steps: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The performer works the referral Task through ``steps``; returns the last version."""
        current: dict[str, Any] = {}
        for step in steps:
            task = self.server_copy(EntityKind.REFERRAL, referral_id, "Task")
            task.update(step)
            response = httpx.put(f"{self.base_url}/Task/{task['id']}", json=task, headers=FHIR_JSON)
            response.raise_for_status()
            current = response.json()
        return current


@pytest.fixture(scope="session")
def loop_mappings() -> Mappings:
    return load_mappings(PROJECT_ROOT / "mappings")


@pytest.fixture(scope="session")
def loop_tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tokens, Path]:
    key = rsa_key("workflow-rsa")
    jwks = write_jwks(tmp_path_factory.mktemp("workflow-jwks") / "jwks.json", [key])
    return Tokens(key), jwks


@contextmanager
def referral_loop(
    tmp_path: Path, base_url: str, mappings: Mappings, tokens: tuple[Tokens, Path]
) -> Iterator[ReferralLoop]:
    """Our side on a scratch database, talking to the FHIR server at ``base_url``."""
    token_maker, jwks = tokens
    system = f"urn:fhirbridge:test-workflow-{uuid.uuid4().hex[:12]}"
    clock = FakeClock()
    with scratch_database("sqlite", workdir=tmp_path, postgres_url=POSTGRES_URL) as url:
        load_caseload(url)
        settings = Settings(
            database_url=url,
            jwt_jwks_path=jwks,
            jwt_audience=AUDIENCE,
            jwt_issuer=ISSUER,
            identifier_system=system,
            fhir_base_url=base_url,
        )
        engine = make_engine(url)
        try:
            with TestClient(create_app(settings, clock=clock)) as api:
                yield ReferralLoop(
                    api=api,
                    headers=token_maker.headers(**care_manager()),
                    base_url=base_url,
                    system=system,
                    mappings=mappings,
                    sessions=session_factory(engine),
                    clock=clock,
                )
        finally:
            engine.dispose()


@pytest.fixture
def loop(
    tmp_path: Path,
    fhir_server: LocalFhirServer,
    loop_mappings: Mappings,
    loop_tokens: tuple[Tokens, Path],
) -> Iterator[ReferralLoop]:
    with referral_loop(tmp_path, fhir_server.base_url, loop_mappings, loop_tokens) as played:
        yield played


# Only opaque version ids: the other strict behaviours are tested where they matter.
OPAQUE_VERSIONS = Quirks(
    opaque_versions=True,
    max_transaction_entries=None,
    max_transaction_updates=None,
    referential_integrity=False,
)


@pytest.fixture
def opaque_loop(
    tmp_path: Path,
    fhir_server: LocalFhirServer,
    strict_server_factory: StrictServerFactory,
    loop_mappings: Mappings,
    loop_tokens: tuple[Tokens, Path],
) -> Iterator[ReferralLoop]:
    """The loop against a server whose version ids are UUIDs (the strict proxy over sekmet)."""
    server = strict_server_factory(OPAQUE_VERSIONS, upstream=fhir_server)
    with referral_loop(tmp_path, server.base_url, loop_mappings, loop_tokens) as played:
        yield played
