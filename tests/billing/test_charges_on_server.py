"""Recorded charges reach a real FHIR server through the outbox as ChargeItems pointing at the
Encounters they count; re-running the month adds nothing there."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.billing import load_rule_year
from fhirbridge.caseload import load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.persistence import (
    EntityKind,
    Store,
    SyncTarget,
    make_engine,
    migrate,
    unit_of_work,
)
from fhirbridge.services.billing import monthly_report, record_charges
from fhirbridge.sync.worker import PushStats, SyncWorker
from tests.sessions import session_factory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(PROJECT_ROOT / "mappings")


@pytest.fixture
def sessions(tmp_path: Path, mappings: Mappings) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'charges.db'}"
    migrate(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    caseload = load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml")
    with unit_of_work(factory) as session:
        store = Store(session)
        for person in [*caseload.patients, *caseload.members]:
            store.save(person)
        for record in caseload.care_records():
            store.save(record)
    yield factory
    engine.dispose()


def _close_october(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        report = monthly_report(
            Store(session),
            month=(2026, 10),
            tz=ZoneInfo("America/Chicago"),
            rules=load_rule_year(2026),
        )
        record_charges(Store(session), report=report)


def _drain(
    sessions: sessionmaker[Session], mappings: Mappings, base_url: str, system: str
) -> PushStats:
    async def go() -> PushStats:
        async with FhirClient(base_url, max_retries=0) as client:
            worker = SyncWorker(
                sessions=sessions,
                client=client,
                mappings=mappings,
                identifier_system=system,
                worker_id="billing-test",
            )
            return await worker.drain()

    return anyio.run(go)


def _charge_items(base_url: str, system: str, charge_id: str) -> list[dict[str, Any]]:
    bundle = httpx.get(
        f"{base_url}/ChargeItem", params={"identifier": f"{system}|charge/{charge_id}"}
    ).json()
    return [entry["resource"] for entry in bundle.get("entry", [])]


def _server_reference(sessions: sessionmaker[Session], kind: EntityKind, local_id: str) -> str:
    resource_type = {EntityKind.TIME_ENTRY: "Encounter"}[kind]
    with sessions() as session:
        link = Store(session).fhir_links.get(SyncTarget(kind, local_id, resource_type))
    assert link is not None
    return link.reference


def test_a_closed_month_reaches_the_server_as_chargeitems_citing_their_encounters(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    system = f"urn:fhirbridge:billing-{uuid.uuid4().hex[:8]}"
    _close_october(sessions)

    stats = _drain(sessions, mappings, fhir_server.base_url, system)

    assert (stats.dead, stats.conflicts) == (0, 0)
    (charge,) = _charge_items(fhir_server.base_url, system, "p-1001-2026-10-99490")
    assert [s["reference"] for s in charge["supportingInformation"]] == [
        _server_reference(sessions, EntityKind.TIME_ENTRY, "te-1001-01"),
        _server_reference(sessions, EntityKind.TIME_ENTRY, "te-1001-02"),
    ]


def test_closing_the_month_again_leaves_one_chargeitem_per_code_on_the_server(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    system = f"urn:fhirbridge:billing-{uuid.uuid4().hex[:8]}"
    _close_october(sessions)
    _drain(sessions, mappings, fhir_server.base_url, system)

    _close_october(sessions)
    _drain(sessions, mappings, fhir_server.base_url, system)

    assert len(_charge_items(fhir_server.base_url, system, "p-1001-2026-10-99490")) == 1
    assert len(_charge_items(fhir_server.base_url, system, "p-1002-2026-10-99424")) == 1
