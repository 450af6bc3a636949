"""Transitional care against sekmet (a real FHIR R4 server): a discharge Encounter another system
wrote opens a TCM period with its two deadline tasks, by pull and by subscription notification
(the hooks the app wires, ``wiring.pull_hooks``); the contact recorded afterwards is pushed as a
TCM Encounter and the tasks as Tasks.

Each test makes its own Patient and identifier system, so tests sharing the session's server
never take each other's resources for theirs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge import wiring
from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.domain import CareTaskKind, CareTeamMember, PatientLink, StaffRole
from fhirbridge.domain.transitional_care import TcmContactKind, TcmPeriod
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.persistence import Store, make_engine, migrate, unit_of_work
from fhirbridge.persistence.scratch import sqlite_url
from fhirbridge.services import transitional_care as tcm
from fhirbridge.sync.notifications import apply_notification
from fhirbridge.sync.pull import InboundOutcome, PullReport, pull_changes
from fhirbridge.sync.worker import SyncWorker
from tests.api.test_api_notifications import notification
from tests.sessions import session_factory, shipped_mappings

pytestmark = pytest.mark.integration
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
DISCHARGE = PROJECT_ROOT / "fixtures" / "transitional_care" / "discharge-home.json"
NOW = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)


class World:
    def __init__(self, server: LocalFhirServer, sessions: sessionmaker[Session]) -> None:
        self.server = server
        self.sessions = sessions
        self.settings = Settings(
            fhir_base_url=server.base_url,
            identifier_system=f"urn:fhirbridge:test-tcm-{uuid.uuid4().hex[:12]}",
        )
        self.http = httpx.Client(base_url=server.base_url, headers=FHIR_JSON, timeout=30)
        self.patient = self.create({"resourceType": "Patient", "active": True})
        self.practitioner = self.create({"resourceType": "Practitioner", "active": True})

    def create(self, resource: dict[str, Any]) -> str:
        created = self.http.post(f"/{resource['resourceType']}", json=resource)
        assert created.status_code == 201, created.text
        return f"{resource['resourceType']}/{created.json()['id']}"

    def discharge(self) -> str:
        """The discharge fixture, about this test's patient, written by "the hospital"."""
        resource = json.loads(DISCHARGE.read_text())
        resource.pop("id")
        resource["subject"] = {"reference": self.patient}
        resource["identifier"][0]["value"] += f"-{uuid.uuid4().hex[:8]}"
        return self.create(resource)

    def pull(self) -> PullReport:
        async def go() -> PullReport:
            async with FhirClient(self.server.base_url) as client:
                return await pull_changes(
                    client=client,
                    sessions=self.sessions,
                    mappings=shipped_mappings(),
                    identifier_system=self.settings.identifier_system,
                    resource_types=["Encounter"],
                    now=lambda: NOW,
                    hooks=wiring.pull_hooks(self.settings, lambda: NOW),
                )

        return anyio.run(go)

    def periods(self) -> list[TcmPeriod]:
        with unit_of_work(self.sessions, read_only=True) as session:
            return Store(session).tcm_periods.list_for_patient("p-1")

    def push(self) -> None:
        async def go() -> None:
            async with FhirClient(self.server.base_url, max_retries=0) as client:
                worker = SyncWorker(
                    sessions=self.sessions,
                    client=client,
                    mappings=shipped_mappings(),
                    identifier_system=self.settings.identifier_system,
                    worker_id="tcm-test",
                )
                await worker.drain(patience=10.0)

        anyio.run(go)

    def search(self, resource_type: str, identifier: str) -> list[dict[str, Any]]:
        found = self.http.get(
            f"/{resource_type}",
            params={"identifier": f"{self.settings.identifier_system}|{identifier}"},
        )
        assert found.status_code == 200, found.text
        return [entry["resource"] for entry in found.json().get("entry", [])]


@pytest.fixture
def world(fhir_server: LocalFhirServer, tmp_path: Path) -> Iterator[World]:
    url = sqlite_url(tmp_path / "tcm.db")
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    world = World(fhir_server, sessions)
    with unit_of_work(sessions) as session:
        store = Store(session)
        store.save(PatientLink(id="p-1", ehr_reference=world.patient, team="north"))
        store.save(
            CareTeamMember(
                id="cm-1",
                name="Nora North",
                role=StaffRole.RN,
                practitioner_reference=world.practitioner,
                team="north",
            )
        )
    yield world
    world.http.close()
    engine.dispose()


def test_a_pulled_discharge_opens_a_period_with_two_deadline_tasks(world: World) -> None:
    encounter = world.discharge()

    report = world.pull()

    handled = [r.reference for r in report.with_outcome(InboundOutcome.HANDLED)]
    assert handled == [encounter]
    (period,) = world.periods()
    assert period.discharge_key == encounter
    with unit_of_work(world.sessions, read_only=True) as session:
        tasks = Store(session).care_tasks.list_for_patient("p-1")
    assert sorted(str(t.kind) for t in tasks) == [CareTaskKind.TCM_CONTACT, CareTaskKind.TCM_VISIT]


def test_pulling_the_discharge_again_opens_no_second_period(world: World) -> None:
    world.discharge()
    world.pull()

    world.pull()

    assert len(world.periods()) == 1


def test_a_notified_discharge_opens_a_period(world: World) -> None:
    encounter = world.discharge()
    bundle = notification("event-id-only.json")
    status = bundle["entry"][0]["resource"]
    events = [p for p in status["parameter"] if p["name"] == "notification-event"]
    status["parameter"] = [p for p in status["parameter"] if p not in events[1:]]
    events[0]["part"][2]["valueReference"]["reference"] = encounter
    bundle["entry"] = bundle["entry"][:1]

    async def go() -> None:
        async with FhirClient(world.server.base_url) as client:
            await apply_notification(
                bundle,
                client=client,
                sessions=world.sessions,
                mappings=shipped_mappings(),
                identifier_system=world.settings.identifier_system,
                now=lambda: NOW,
                hooks=wiring.pull_hooks(world.settings, lambda: NOW),
            )

    anyio.run(go)

    (period,) = world.periods()
    assert period.discharge_key == encounter


def test_the_contact_is_pushed_as_a_tcm_encounter_and_the_tasks_as_tasks(world: World) -> None:
    world.discharge()
    world.pull()
    (period,) = world.periods()
    with unit_of_work(world.sessions) as session:
        contact = tcm.record_contact(
            store=Store(session),
            period_id=period.id,
            new=tcm.NewTcmContact(
                kind=TcmContactKind.INTERACTIVE_CONTACT,
                occurred_at=datetime(2026, 3, 9, 15, tzinfo=UTC),
                staff_id="cm-1",
                minutes=12,
            ),
            policy=wiring.transitional_care_policy(world.settings, lambda: NOW),
        )

    world.push()

    (encounter,) = world.search("Encounter", f"tcm-contact/{contact.id}")
    assert encounter["status"] == "finished"
    assert encounter["serviceType"]["coding"][0]["code"] == "TCM"
    assert encounter["subject"]["reference"] == world.patient
    assert encounter["length"]["value"] == 12
    (task,) = world.search("Task", f"care-task/{period.contact_task_id}")
    assert task["status"] == "completed"
    assert task["code"]["coding"][-1]["code"] == "tcm-contact"
