"""A patient's care team pushed by the sync worker to sekmet (the real FHIR server of the test
session) as a US Core CareTeam, on SQLite and PostgreSQL: created once, left alone when saved
unchanged, updated in place when a participant changes, and read back as the same team."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.caseload import load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import CareTeamParticipant, CareTeamRole, PatientCareTeam
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.context import MappingContext
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.mapping.references import StaticReferences
from fhirbridge.persistence import EntityKind, Store, SyncTarget, make_engine, unit_of_work
from fhirbridge.persistence.scratch import DatabaseUnavailable, scratch_database
from fhirbridge.sync.worker import PushStats, SyncWorker
from tests.conftest import POSTGRES_URL
from tests.sessions import session_factory

pytestmark = pytest.mark.integration
CASELOAD = load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml")
TEAM = PatientCareTeam(
    id="team-p-1001",
    patient_id="p-1001",
    name="Care team of p-1001",
    participants=[
        CareTeamParticipant(CareTeamRole.BILLING_PRACTITIONER, member_id="m-md"),
        CareTeamParticipant(CareTeamRole.CARE_MANAGER, member_id="m-rn", start=date(2026, 1, 5)),
        CareTeamParticipant(CareTeamRole.BH_CARE_MANAGER, member_id="m-sw"),
        CareTeamParticipant.of_external(
            CareTeamRole.PSYCHIATRIC_CONSULTANT, "Organization/telepsych-1"
        ),
    ],
)


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(PROJECT_ROOT / "mappings")


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    try:
        with scratch_database(request.param, workdir=tmp_path, postgres_url=POSTGRES_URL) as url:
            engine = make_engine(url)
            factory = session_factory(engine)
            with unit_of_work(factory) as session:
                store = Store(session)
                for person in [*CASELOAD.patients, *CASELOAD.members]:
                    store.save(person)
            yield factory
            engine.dispose()
    except DatabaseUnavailable as error:
        pytest.skip(f"PostgreSQL not reachable at {error.url} ({error.reason})")


def _save(sessions: sessionmaker[Session], team: PatientCareTeam) -> None:
    with unit_of_work(sessions) as session:
        Store(session).save(team)


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
                worker_id="care-team-test",
            )
            return await worker.drain(patience=10.0)

    return anyio.run(go)


def _on_server(sessions: sessionmaker[Session], base_url: str) -> dict[str, Any]:
    with sessions() as session:
        link = Store(session).fhir_links.get(
            SyncTarget(EntityKind.PATIENT_CARE_TEAM, TEAM.id, "CareTeam")
        )
    assert link is not None
    resource: dict[str, Any] = httpx.get(f"{base_url}/CareTeam/{link.server_id}").json()
    return resource


def _system() -> str:
    return f"urn:fhirbridge:care-team-{uuid.uuid4().hex[:12]}"


def test_a_care_team_is_pushed_once_and_reads_back_as_the_same_team(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    system = _system()
    _save(sessions, TEAM)

    stats = _drain(sessions, mappings, fhir_server.base_url, system)

    assert (stats.pushed, stats.dead) == (1, 0)
    resource = _on_server(sessions, fhir_server.base_url)
    assert resource["subject"]["reference"] == "Patient/ehr-88401"
    refs = StaticReferences.of(
        CASELOAD.patients, CASELOAD.members, primary=mappings.plan.primary_resources
    )
    ctx = MappingContext(system, refs, mappings.terminology)
    back = mappings.get("patient_care_team", "CareTeam").from_fhir(resource, ctx)
    assert back["participants"] == TEAM.participants
    # sekmet cannot search CareTeam by identifier: the worker derives the id (update-as-create).
    assert {"system": system, "value": f"care-team/{TEAM.id}"} in resource["identifier"]


def test_pushing_an_unchanged_team_again_sends_nothing(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    system = _system()
    _save(sessions, TEAM)
    _drain(sessions, mappings, fhir_server.base_url, system)
    _save(sessions, TEAM)

    again = _drain(sessions, mappings, fhir_server.base_url, system)

    assert (again.pushed, again.unchanged, again.dead) == (0, 1, 0)
    assert _on_server(sessions, fhir_server.base_url)["meta"]["versionId"] == "1"


def test_a_changed_participant_updates_the_careteam_in_place(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    system = _system()
    _save(sessions, TEAM)
    _drain(sessions, mappings, fhir_server.base_url, system)
    ended = dataclasses.replace(TEAM.participants[1], end=date(2026, 6, 30))
    _save(sessions, dataclasses.replace(TEAM, participants=[*TEAM.participants[:1], ended]))

    stats = _drain(sessions, mappings, fhir_server.base_url, system)

    assert (stats.pushed, stats.dead) == (1, 0)
    resource = _on_server(sessions, fhir_server.base_url)
    assert resource["meta"]["versionId"] == "2"
    assert [p.get("period") for p in resource["participant"]] == [
        None,
        {"start": "2026-01-05", "end": "2026-06-30"},
    ]
