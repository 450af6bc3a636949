"""Assessments pushed by the sync worker to sekmet (the real FHIR server of the test session),
on SQLite and PostgreSQL: a positive food screen's Gravity chain (QuestionnaireResponse ->
Observations -> Condition -> Goal) and a PHQ-9's urgent task arrive with every reference
resolving, the proposed referral stays local, and pushing again changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.caseload import load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.context import MappingContext
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.persistence import EntityKind, Store, SyncTarget, make_engine, unit_of_work
from fhirbridge.persistence.scratch import DatabaseUnavailable, scratch_database
from fhirbridge.services.assessment import NewAssessment, Recorded, record_assessment
from fhirbridge.sync.references import LinkReferences
from fhirbridge.sync.worker import PushStats, SyncWorker
from tests.conftest import POSTGRES_URL
from tests.sessions import session_factory

pytestmark = pytest.mark.integration
CASELOAD = load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml")
REQUESTS = PROJECT_ROOT / "fixtures" / "assessments" / "requests"


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


def _record(sessions: sessionmaker[Session], mappings: Mappings, name: str) -> Recorded:
    body = json.loads((REQUESTS / f"{name}.json").read_text())
    with unit_of_work(sessions) as session:
        return record_assessment(
            store=Store(session),
            instruments=mappings.instruments,
            new=NewAssessment(
                patient_id="p-1001",
                instrument=body["instrument"],
                answers=body["answers"],
                authored=datetime.fromisoformat(body["authored"]).astimezone(UTC),
                author_id="m-rn",
            ),
            tz=ZoneInfo("UTC"),
        )


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
                worker_id="assessment-test",
            )
            return await worker.drain(patience=10.0)

    return anyio.run(go)


def _read(
    sessions: sessionmaker[Session], base_url: str, kind: EntityKind, local_id: str, rtype: str
) -> dict[str, Any]:
    with sessions() as session:
        link = Store(session).fhir_links.get(SyncTarget(kind, local_id, rtype))
    assert link is not None, f"{kind.value} {local_id} not on the server"
    resource: dict[str, Any] = httpx.get(f"{base_url}/{rtype}/{link.server_id}").json()
    return resource


def _resolves(base_url: str, reference: str) -> bool:
    return httpx.get(f"{base_url}/{reference}").status_code == 200


def _system() -> str:
    return f"urn:fhirbridge:assessments-{uuid.uuid4().hex[:12]}"


def test_the_food_screen_chain_arrives_with_its_references_resolving(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    base = fhir_server.base_url
    recorded = _record(sessions, mappings, "hrsn-food")

    stats = _drain(sessions, mappings, base, _system())

    # The response, nine answers, the concern and the goal; the proposed referral stays here.
    assert (stats.pushed, stats.dead) == (12, 0)
    [concern] = recorded.concerns
    condition = _read(sessions, base, EntityKind.HEALTH_CONCERN, concern.id, "Condition")
    [evidence] = condition["evidence"][0]["detail"]
    assert _resolves(base, evidence["reference"])
    observation = httpx.get(f"{base}/{evidence['reference']}").json()
    assert observation["code"]["coding"][0]["code"] == "88122-7"
    [derived] = observation["derivedFrom"]
    assert derived["reference"].startswith("QuestionnaireResponse/")
    response = httpx.get(f"{base}/{derived['reference']}").json()
    assert response["questionnaire"] == "http://loinc.org/q/96777-8"
    assert len(response["item"]) == 9
    [goal] = recorded.goals
    on_server = _read(sessions, base, EntityKind.GOAL, goal.id, "Goal")
    assert on_server["lifecycleStatus"] == "proposed"
    [referral] = recorded.referrals
    with sessions() as session:
        links = Store(session).fhir_links
        assert links.get(SyncTarget(EntityKind.REFERRAL, referral.id, "ServiceRequest")) is None


def test_a_phq9_with_item_9_pushes_its_urgent_task(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    base = fhir_server.base_url
    recorded = _record(sessions, mappings, "phq9-item9")

    stats = _drain(sessions, mappings, base, _system())

    assert (stats.pushed, stats.dead) == (12, 0)  # response, total + 9 items, task
    [task] = recorded.tasks
    on_server = _read(sessions, base, EntityKind.CARE_TASK, task.id, "Task")
    assert on_server["priority"] == "urgent"
    total = next(o for o in recorded.observations if o.value_integer is not None)
    observation = _read(sessions, base, EntityKind.SCREENING_OBSERVATION, total.id, "Observation")
    assert observation["valueInteger"] == 3
    assert _resolves(base, observation["derivedFrom"][0]["reference"])


def test_pushing_the_chain_again_changes_nothing(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    base = fhir_server.base_url
    system = _system()
    recorded = _record(sessions, mappings, "hrsn-food")
    _drain(sessions, mappings, base, system)
    [concern] = recorded.concerns
    with unit_of_work(sessions) as session:
        store = Store(session)
        store.save(store.assessments.require(recorded.assessment.id))
        for observation in recorded.observations:
            store.save(store.screening_observations.require(observation.id))
        store.save(store.health_concerns.require(concern.id))

    again = _drain(sessions, mappings, base, system)

    assert (again.pushed, again.dead) == (0, 0)
    assert again.unchanged == 11
    condition = _read(sessions, base, EntityKind.HEALTH_CONCERN, concern.id, "Condition")
    assert condition["meta"]["versionId"] == "1"


def test_the_goal_addresses_the_concerns_condition_and_the_chain_resolves(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    base = fhir_server.base_url
    recorded = _record(sessions, mappings, "hrsn-food")

    _drain(sessions, mappings, base, _system())

    [concern], [goal] = recorded.concerns, recorded.goals
    assert goal.concern_ids == [concern.id]
    condition = _read(sessions, base, EntityKind.HEALTH_CONCERN, concern.id, "Condition")
    on_server = _read(sessions, base, EntityKind.GOAL, goal.id, "Goal")
    [address] = on_server["addresses"]
    assert address["reference"] == f"Condition/{condition['id']}"
    # Observation -> Condition -> Goal, each step read from the server.
    addressed = httpx.get(f"{base}/{address['reference']}").json()
    evidence = addressed["evidence"][0]["detail"][0]["reference"]
    observation = httpx.get(f"{base}/{evidence}").json()
    assert observation["code"]["coding"][0]["code"] == "88122-7"
    assert addressed["subject"] == on_server["subject"] == observation["subject"]


def test_the_goal_read_back_names_our_concern_not_a_raw_reference(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    base = fhir_server.base_url
    recorded = _record(sessions, mappings, "hrsn-food")
    system = _system()
    _drain(sessions, mappings, base, system)
    [concern], [goal] = recorded.concerns, recorded.goals
    on_server = _read(sessions, base, EntityKind.GOAL, goal.id, "Goal")

    with sessions() as session:
        ctx = MappingContext(system, LinkReferences(Store(session)), mappings.terminology)
        values = mappings.get("goal", "Goal").from_fhir(on_server, ctx)

    assert (values["concern_ids"], values["addresses"]) == ([concern.id], [])


def test_pushing_the_goal_again_changes_nothing(
    sessions: sessionmaker[Session], mappings: Mappings, fhir_server: LocalFhirServer
) -> None:
    base = fhir_server.base_url
    system = _system()
    recorded = _record(sessions, mappings, "hrsn-food")
    _drain(sessions, mappings, base, system)
    [goal] = recorded.goals
    with unit_of_work(sessions) as session:
        store = Store(session)
        store.save(store.goals.require(goal.id))

    again = _drain(sessions, mappings, base, system)

    assert (again.pushed, again.dead, again.unchanged) == (0, 0, 1)
    on_server = _read(sessions, base, EntityKind.GOAL, goal.id, "Goal")
    assert on_server["meta"]["versionId"] == "1"
