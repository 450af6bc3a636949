"""Device readings pulled from sekmet (a real FHIR R4 server) by patient and code.

Each test makes its own Patient on the server, so tests sharing the session's server never see
each other's Observations. Observations are the fixtures under fixtures/observations/inbound,
pointed at that patient.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import DeviceReading, PatientLink
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.readings import load_reading_rules
from fhirbridge.persistence import Store, make_engine, migrate, unit_of_work
from fhirbridge.persistence.scratch import sqlite_url
from fhirbridge.sync.readings import ReadingImport, ReadingPullReport, ReadingSource, pull_readings
from tests.sessions import session_factory

pytestmark = pytest.mark.integration
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
INBOUND = PROJECT_ROOT / "fixtures" / "observations" / "inbound"
READINGS = ReadingImport(
    rules=load_reading_rules(PROJECT_ROOT / "mappings"),
    zone=ZoneInfo("America/New_York"),
    source=ReadingSource(),
)


class World:
    def __init__(self, server: LocalFhirServer, sessions: sessionmaker[Session]) -> None:
        self.server = server
        self.sessions = sessions
        self.http = httpx.Client(base_url=server.base_url, headers=FHIR_JSON, timeout=30)
        self.patient = self.new_patient()

    def new_patient(self) -> str:
        created = self.http.post("/Patient", json={"resourceType": "Patient", "active": True})
        assert created.status_code == 201, created.text
        return f"Patient/{created.json()['id']}"

    def post(self, name: str, *, patient: str | None = None, **changes: Any) -> dict[str, Any]:
        resource = json.loads((INBOUND / f"{name}.json").read_text())
        resource.pop("id", None)
        resource.pop("meta", None)
        resource["subject"] = {"reference": patient or self.patient}
        if "identifier" in resource:  # unique per test: the server is shared
            resource["identifier"][0]["value"] += f"-{uuid.uuid4().hex[:8]}"
        resource.update(changes)
        created = self.http.post("/Observation", json=resource)
        assert created.status_code == 201, created.text
        body: dict[str, Any] = created.json()
        return body

    def pull(self, codes: list[str] | None = None) -> ReadingPullReport:
        async def go() -> ReadingPullReport:
            async with FhirClient(self.server.base_url) as client:
                return await pull_readings(
                    client=client,
                    sessions=self.sessions,
                    readings=READINGS,
                    codes=codes,
                    now=lambda: datetime.now(UTC),
                )

        return anyio.run(go)

    def stored(self) -> list[DeviceReading]:
        with unit_of_work(self.sessions, read_only=True) as session:
            return Store(session).device_readings.for_patient("p-1")


@pytest.fixture
def world(fhir_server: LocalFhirServer, tmp_path: Path) -> Iterator[World]:
    url = sqlite_url(tmp_path / "readings.db")
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    world = World(fhir_server, sessions)
    with unit_of_work(sessions) as session:
        Store(session).save(PatientLink(id="p-1", ehr_reference=world.patient, team="north"))
    yield world
    world.http.close()
    engine.dispose()


def test_a_patients_readings_are_pulled_and_stored(world: World) -> None:
    world.post("hub-blood-pressure")
    world.post("r4-body-weight")

    report = world.pull()

    assert report.counts == {"created": 2}
    by_code = {r.code: r for r in world.stored()}
    assert (by_code["85354-9"].value, by_code["85354-9"].second_value) == (
        Decimal("138.5"),
        Decimal("84"),
    )
    assert by_code["85354-9"].day == date(2026, 3, 1)  # New York's day of 03:30 UTC


def test_a_reading_without_identifier_is_named_by_the_server_and_its_id(world: World) -> None:
    created = world.post("r4-body-weight")

    world.pull()

    (reading,) = world.stored()
    assert (reading.source_system, reading.source_value) == (
        world.server.base_url.rstrip("/"),
        f"Observation/{created['id']}",
    )


def test_pulling_again_fetches_nothing_already_pulled(world: World) -> None:
    world.post("hub-blood-pressure")
    world.pull()

    again = world.pull()

    assert again.counts == {}
    assert len(world.stored()) == 1


def test_a_reading_changed_on_the_server_is_updated_not_duplicated(world: World) -> None:
    created = world.post("r4-heart-rate")
    world.pull()
    created["valueQuantity"]["value"] = 61
    updated = world.http.put(f"/Observation/{created['id']}", json=created)
    assert updated.status_code == 200, updated.text

    report = world.pull()

    assert report.counts == {"updated": 1}
    assert [r.value for r in world.stored()] == [Decimal("61")]


def test_only_the_asked_codes_and_the_patients_own_readings_are_pulled(world: World) -> None:
    world.post("hub-blood-pressure")
    world.post("r4-heart-rate")
    world.post("hub-blood-pressure", patient=world.new_patient())  # someone else's

    report = world.pull(codes=["85354-9"])

    assert report.counts == {"created": 1}
    assert [r.code for r in world.stored()] == ["85354-9"]


def test_an_observation_that_is_no_reading_is_reported_and_the_rest_stored(
    world: World,
) -> None:
    world.post(
        "r4-heart-rate",
        valueQuantity={"value": 60, "code": "kg", "system": "http://unitsofmeasure.org"},
    )
    world.post("hub-blood-pressure")

    report = world.pull()

    assert report.counts == {"created": 1, "refused": 1}
    assert [field for _, field, _ in report.refused] == ["valueQuantity.code"]
