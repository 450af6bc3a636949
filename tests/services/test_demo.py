"""The demo job stores the caseload, pushes it to a real FHIR server, and repeats safely."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import pytest

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.persistence import EntityKind, Store, make_engine, make_session_factory
from fhirbridge.services.demo import DemoReport, run_demo

pytestmark = pytest.mark.integration
CASELOAD = PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"


def _run(database_url: str, server: LocalFhirServer, system: str) -> DemoReport:
    async def go() -> DemoReport:
        return await run_demo(
            database_url=database_url,
            caseload_path=CASELOAD,
            mappings_dir=PROJECT_ROOT / "mappings",
            fhir_base_url=server.base_url,
            identifier_system=system,
            month=(2026, 10),
            tz=ZoneInfo("America/New_York"),
        )

    return anyio.run(go)


def test_demo_pushes_every_record_and_empties_the_outbox(
    tmp_path: Path, fhir_server: LocalFhirServer
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"

    report = _run(url, fhir_server, "urn:fhirbridge:test-demo-1")

    assert report.resources_by_type == {
        "EpisodeOfCare": 3,
        "Consent": 3,
        "Goal": 5,
        "CarePlan": 3,
        "Task": 6,
        "Encounter": 5,
        "ServiceRequest": 2,
        "ChargeItem": 2,
    }
    assert report.outbox == {"pending": 0, "in_flight": 0, "done": 29, "dead": 0}
    with make_session_factory(make_engine(url))() as session:
        links = Store(session).fhir_links.for_record(EntityKind.REFERRAL, "r-1001-food")
    assert sorted(link.resource_type for link in links) == ["ServiceRequest", "Task"]


def test_demo_run_twice_sends_nothing_the_second_time(
    tmp_path: Path, fhir_server: LocalFhirServer
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    _run(url, fhir_server, "urn:fhirbridge:test-demo-2")

    again = _run(url, fhir_server, "urn:fhirbridge:test-demo-2")

    assert (again.pushed.pushed, again.pushed.unchanged) == (0, 27)


def test_demo_bills_the_month_with_reasons(tmp_path: Path, fhir_server: LocalFhirServer) -> None:
    report = _run(f"sqlite:///{tmp_path / 'demo.db'}", fhir_server, "urn:fhirbridge:test-demo-3")

    assert report.billing is not None
    lines = {(line.patient_id, line.code): line for line in report.billing.lines}
    assert lines[("p-1001", "99490")].units == 1
    assert lines[("p-1002", "99424")].units == 1
    assert lines[("p-1003", "99484")].explanation == "15 of 20 minutes"
