"""The push worker drains the outbox into a real FHIR server: once, in order, idempotently."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import TaskStatus
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.concepts import concept_of
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.persistence import (
    EntityKind,
    Store,
    SyncTarget,
    make_engine,
    migrate,
    unit_of_work,
)
from fhirbridge.sync.worker import PushStats, SyncWorker, WorkerOptions
from tests.sessions import session_factory

pytestmark = pytest.mark.integration
CASELOAD = PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(PROJECT_ROOT / "mappings")


@pytest.fixture
def caseload() -> Caseload:
    return load_caseload(CASELOAD)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    migrate(url)
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()


def _save_all(sessions: sessionmaker[Session], caseload: Caseload, mappings: Mappings) -> None:
    with unit_of_work(sessions) as session:
        store = Store(session)
        for patient in caseload.patients:
            store.save(patient)
        for member in caseload.members:
            store.save(member)
        for record in caseload.care_records():
            store.save(record)


def _drain(
    sessions: sessionmaker[Session],
    mappings: Mappings,
    base_url: str,
    system: str,
    *,
    patience: float = 10.0,
) -> PushStats:
    async def go() -> PushStats:
        async with FhirClient(base_url, max_retries=0) as client:
            worker = SyncWorker(
                sessions=sessions,
                client=client,
                mappings=mappings,
                identifier_system=system,
                worker_id="test-worker",
                options=WorkerOptions(batch_size=10),
            )
            return await worker.drain(patience=patience)

    return anyio.run(go)


def _outbox_states(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        return {s.value: n for s, n in Store(session).outbox.counts().items() if n}


def _count(base_url: str, resource_type: str, identifier: str) -> int:
    bundle = httpx.get(f"{base_url}/{resource_type}", params={"identifier": identifier}).json()
    return len(bundle.get("entry", []))


def test_draining_pushes_every_record_once_and_links_it(
    sessions: sessionmaker[Session],
    caseload: Caseload,
    mappings: Mappings,
    fhir_server: LocalFhirServer,
) -> None:
    system = "urn:fhirbridge:worker-1"
    _save_all(sessions, caseload, mappings)

    stats = _drain(sessions, mappings, fhir_server.base_url, system)

    assert (stats.dead, stats.conflicts, stats.retried) == (0, 0, 0)
    assert _outbox_states(sessions).keys() == {"done"}
    for record in caseload.care_records():
        for mapping in mappings.for_concept(concept_of(record)):
            value = f"{system}|{mapping.identifier_prefix}/{record.id}"
            if mapping.resource != "Goal":  # sekmet cannot search Goal; ids are derived
                assert _count(fhir_server.base_url, mapping.resource, value) == 1, value


def test_references_across_batches_are_completed_once_their_targets_exist(
    sessions: sessionmaker[Session],
    caseload: Caseload,
    mappings: Mappings,
    fhir_server: LocalFhirServer,
) -> None:
    system = "urn:fhirbridge:worker-1b"
    _save_all(sessions, caseload, mappings)

    _drain(sessions, mappings, fhir_server.base_url, system)  # batches of 10 split the graph

    with sessions() as session:
        links = Store(session).fhir_links
        plan = links.get(SyncTarget(EntityKind.CARE_PLAN, "cp-1001", "CarePlan"))
        referrals = [
            links.get(SyncTarget(EntityKind.REFERRAL, r.id, "ServiceRequest"))
            for r in caseload.referrals
        ]
    assert plan is not None
    on_server = httpx.get(f"{fhir_server.base_url}/CarePlan/{plan.server_id}").json()
    activity = [a["reference"]["reference"] for a in on_server["activity"]]
    assert all(f"ServiceRequest/{r.server_id}" in activity for r in referrals if r)
    assert len(activity) == 4


def test_saving_unchanged_records_again_sends_nothing(
    sessions: sessionmaker[Session],
    caseload: Caseload,
    mappings: Mappings,
    fhir_server: LocalFhirServer,
) -> None:
    system = "urn:fhirbridge:worker-2"
    _save_all(sessions, caseload, mappings)
    _drain(sessions, mappings, fhir_server.base_url, system)
    _save_all(sessions, caseload, mappings)

    again = _drain(sessions, mappings, fhir_server.base_url, system)

    assert (again.pushed, again.unchanged) == (0, 27)


def test_a_changed_record_is_updated_in_place_with_if_match(
    sessions: sessionmaker[Session],
    caseload: Caseload,
    mappings: Mappings,
    fhir_server: LocalFhirServer,
) -> None:
    system = "urn:fhirbridge:worker-3"
    _save_all(sessions, caseload, mappings)
    _drain(sessions, mappings, fhir_server.base_url, system)
    goal = dataclasses.replace(caseload.goals[0], description="HbA1c below 6.8%")
    with unit_of_work(sessions) as session:
        Store(session).save(goal)

    stats = _drain(sessions, mappings, fhir_server.base_url, system)

    assert stats.pushed == 1
    with sessions() as session:
        link = Store(session).fhir_links.get(SyncTarget(EntityKind.GOAL, goal.id, "Goal"))
    assert link is not None
    assert link.version_id == "2"
    on_server = httpx.get(f"{fhir_server.base_url}/Goal/{link.server_id}").json()
    assert on_server["description"]["text"] == "HbA1c below 6.8%"


def test_a_resource_failing_the_profile_is_never_sent_and_blocks_nothing_else(
    sessions: sessionmaker[Session],
    caseload: Caseload,
    mappings: Mappings,
    fhir_server: LocalFhirServer,
) -> None:
    system = "urn:fhirbridge:worker-4"
    referral = caseload.referrals[1]
    # Gravity requires a status reason for a rejected referral Task.
    caseload.referrals[1] = dataclasses.replace(referral, task_status=TaskStatus.REJECTED)
    _save_all(sessions, caseload, mappings)

    stats = _drain(sessions, mappings, fhir_server.base_url, system)

    assert stats.dead == 1
    with sessions() as session:
        dead = Store(session).outbox.dead_letters()
    assert [(d.local_id, d.resource_type) for d in dead] == [(referral.id, "Task")]
    assert dead[0].last_error is not None
    assert "statusReason" in dead[0].last_error
    assert _count(fhir_server.base_url, "Task", f"{system}|referral-task/{referral.id}") == 0


def test_an_unreachable_server_delays_the_push_and_loses_nothing(
    sessions: sessionmaker[Session], caseload: Caseload, mappings: Mappings, tmp_path: Path
) -> None:
    system = "urn:fhirbridge:worker-5"
    server = LocalFhirServer(workdir=tmp_path / "sekmet")
    _save_all(sessions, caseload, mappings)

    down = _drain(sessions, mappings, server.base_url, system, patience=0)

    assert down.pushed == 0
    assert down.retried > 0
    assert _outbox_states(sessions) == {"pending": 27}
    with server:
        with unit_of_work(sessions) as session:  # make the retries due now
            session.execute(text("UPDATE outbox SET next_attempt_at = created_at"))
        up = _drain(sessions, mappings, server.base_url, system)
        assert up.dead == 0
        assert _count(server.base_url, "Encounter", f"{system}|time-entry/te-1001-01") == 1
    assert _outbox_states(sessions).keys() == {"done"}


def test_a_concurrent_edit_on_the_server_becomes_a_conflict_not_an_overwrite(
    sessions: sessionmaker[Session],
    caseload: Caseload,
    mappings: Mappings,
    fhir_server: LocalFhirServer,
) -> None:
    system = "urn:fhirbridge:worker-6"
    _save_all(sessions, caseload, mappings)
    _drain(sessions, mappings, fhir_server.base_url, system)
    with sessions() as session:
        link = Store(session).fhir_links.get(SyncTarget(EntityKind.GOAL, "g-1001-bp", "Goal"))
    assert link is not None
    url = f"{fhir_server.base_url}/Goal/{link.server_id}"
    theirs = httpx.get(url).json()
    theirs["description"]["text"] = "Systolic under 125 (changed in the EHR)"
    assert httpx.put(url, json=theirs).status_code == 200
    ours = dataclasses.replace(caseload.goals[1], description="Systolic under 135")
    with unit_of_work(sessions) as session:
        Store(session).save(ours)

    stats = _drain(sessions, mappings, fhir_server.base_url, system)

    assert (stats.conflicts, stats.pushed) == (1, 0), stats
    assert httpx.get(url).json()["description"]["text"] == "Systolic under 125 (changed in the EHR)"
    with sessions() as session:
        store = Store(session)
        (conflict,) = store.conflicts.open()
        kept = store.goals.require("g-1001-bp")
    assert conflict.reason == "version-conflict"
    assert conflict.local["description"]["text"] == "Systolic under 135"
    assert conflict.remote["description"]["text"] == "Systolic under 125 (changed in the EHR)"
    assert kept.description == "Systolic under 135"


def test_a_reference_to_a_record_never_pushed_does_not_make_the_referrer_go_round(
    sessions: sessionmaker[Session],
    caseload: Caseload,
    mappings: Mappings,
    fhir_server: LocalFhirServer,
) -> None:
    system = "urn:fhirbridge:worker-7"
    _save_all(sessions, caseload, mappings)
    with unit_of_work(sessions) as session:  # the consent is stored but never queued
        session.execute(
            text(
                "DELETE FROM outbox WHERE entity_kind = 'program_consent' AND local_id = 'cs-1001'"
            )
        )

    stats = _drain(sessions, mappings, fhir_server.base_url, system)

    assert stats.dead == 0
    assert _outbox_states(sessions).keys() == {"done"}
    on_server = httpx.get(
        f"{fhir_server.base_url}/ServiceRequest",
        params={"identifier": f"{system}|referral/r-1001-food"},
    ).json()["entry"][0]["resource"]
    assert all("Consent/" not in ref["reference"] for ref in on_server["supportingInfo"])
