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
        "Task": 7,  # six, and the follow-up call created when the food referral came back
        "Encounter": 5,
        "ServiceRequest": 2,
        "ChargeItem": 2,
    }
    assert report.outbox["pending"] + report.outbox["in_flight"] + report.outbox["dead"] == 0
    with make_session_factory(make_engine(url))() as session:
        links = Store(session).fhir_links.for_record(EntityKind.REFERRAL, "r-1001-food")
    assert sorted(link.resource_type for link in links) == ["ServiceRequest", "Task"]


def test_demo_food_referral_comes_back_completed_and_closes_the_loop(
    tmp_path: Path, fhir_server: LocalFhirServer
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"

    report = _run(url, fhir_server, "urn:fhirbridge:test-demo-2")

    assert report.referral is not None
    assert (report.referral.task_status.value, report.referral.status.value) == (
        "completed",
        "completed",
    )
    with make_session_factory(make_engine(url))() as session:
        store = Store(session)
        goal = store.goals.require("g-1001-food")
        follow_ups = [
            t for t in store.care_tasks.list_for_patient("p-1001") if t.kind == "follow-up"
        ]
    assert goal.achievement_status is not None
    assert goal.achievement_status.value == "achieved"
    assert len(follow_ups) == 1


def test_demo_bills_the_month_with_reasons(tmp_path: Path, fhir_server: LocalFhirServer) -> None:
    report = _run(f"sqlite:///{tmp_path / 'demo.db'}", fhir_server, "urn:fhirbridge:test-demo-3")

    assert report.billing is not None
    lines = {(line.patient_id, line.code): line for line in report.billing.lines}
    assert lines[("p-1001", "99490")].units == 1
    assert lines[("p-1002", "99424")].units == 1
    assert lines[("p-1003", "99484")].explanation == "15 of 20 minutes"
