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

    assert report.created == 27
    assert report.outbox == {"pending": 0, "in_flight": 0, "done": 27, "dead": 0}
    with make_session_factory(make_engine(url))() as session:
        links = Store(session).fhir_links.for_record(EntityKind.REFERRAL, "r-1001-food")
    assert sorted(link.resource_type for link in links) == ["ServiceRequest", "Task"]


def test_demo_run_twice_creates_nothing_the_second_time(
    tmp_path: Path, fhir_server: LocalFhirServer
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    _run(url, fhir_server, "urn:fhirbridge:test-demo-2")

    again = _run(url, fhir_server, "urn:fhirbridge:test-demo-2")

    assert (again.created, again.unchanged) == (0, 27)


def test_demo_bills_the_month_with_reasons(tmp_path: Path, fhir_server: LocalFhirServer) -> None:
    report = _run(f"sqlite:///{tmp_path / 'demo.db'}", fhir_server, "urn:fhirbridge:test-demo-3")

    by_patient = {r.patient_id: r for r in report.billing}
    assert by_patient["p-1001"].units("99490") == 1
    assert by_patient["p-1002"].units("99424") == 1
    assert by_patient["p-1003"].reason("99484") == "15 of 20 minutes"
