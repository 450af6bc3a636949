"""The demo job plays the EHR, stores the caseload, pushes it to a real FHIR server, closes the
food referral's loop and bills the month; repeating it is safe."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from fhirbridge import wiring
from fhirbridge.caseload import load_caseload
from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.conformance import ensure_conformant
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.persistence import EntityKind, Store, make_engine
from fhirbridge.services.demo import DemoReport, ehr_references, load_ehr_side
from tests.sessions import session_factory

DEMO = PROJECT_ROOT / "fixtures" / "demo"
CASELOAD = DEMO / "caseload.yaml"
EHR = DEMO / "ehr"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


def run_demo(database_url: str, base_url: str, system: str) -> DemoReport:
    settings = Settings(identifier_system=system, practice_timezone="America/New_York")

    async def go() -> DemoReport:
        return await wiring.demo(
            settings,
            base_url=base_url,
            database_url=database_url,
            caseload_path=CASELOAD,
            ehr_dir=EHR,
            month=(2026, 10),
        )

    return anyio.run(go)


def test_every_ehr_resource_the_demo_caseload_points_at_has_a_fixture() -> None:
    referenced = ehr_references(load_caseload(CASELOAD))

    assert sorted(referenced) == sorted(load_ehr_side(EHR))


def test_ehr_resources_are_created_in_dependency_order() -> None:
    types = [reference.split("/")[0] for reference in ehr_references(load_caseload(CASELOAD))]

    assert types.index("Patient") < types.index("Condition")
    assert types == sorted(
        types, key=["Organization", "Practitioner", "Patient", "Condition"].index
    )


@pytest.mark.parametrize("reference", sorted(load_ehr_side(EHR)))
def test_ehr_fixture_is_valid_r4_and_claims_its_us_core_profile(reference: str) -> None:
    resource = load_ehr_side(EHR)[reference]

    ensure_conformant(resource)
    profile = {
        "Patient": "us-core-patient",
        "Practitioner": "us-core-practitioner",
        "Condition": "us-core-condition-problems-health-concerns",
        "Organization": "us-core-organization",
    }[resource["resourceType"]]
    assert resource["meta"]["profile"] == [US_CORE + profile]


def test_ehr_patients_carry_the_caseload_medical_record_numbers() -> None:
    fixtures = load_ehr_side(EHR)

    for patient in load_caseload(CASELOAD).patients:
        identifiers = fixtures[patient.ehr_reference]["identifier"]
        pairs = {(i["system"], i["value"]) for i in identifiers}
        assert (patient.mrn_system, patient.mrn_value) in pairs


def test_ehr_practitioners_carry_the_care_team_npis() -> None:
    fixtures = load_ehr_side(EHR)

    for member in load_caseload(CASELOAD).members:
        if member.npi is None or member.practitioner_reference is None:
            continue
        identifiers = fixtures[member.practitioner_reference]["identifier"]
        assert {"system": "http://hl7.org/fhir/sid/us-npi", "value": member.npi} in identifiers


@pytest.mark.integration
def test_demo_pushes_every_record_and_empties_the_outbox(
    tmp_path: Path, fhir_server: LocalFhirServer
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"

    report = run_demo(url, fhir_server.base_url, "urn:fhirbridge:test-demo-1")

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
    assert report.finished
    with session_factory(make_engine(url))() as session:
        links = Store(session).fhir_links.for_record(EntityKind.REFERRAL, "r-1001-food")
    assert sorted(link.resource_type for link in links) == ["ServiceRequest", "Task"]


@pytest.mark.integration
def test_demo_food_referral_comes_back_completed_and_closes_the_loop(
    tmp_path: Path, fhir_server: LocalFhirServer
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"

    report = run_demo(url, fhir_server.base_url, "urn:fhirbridge:test-demo-2")

    assert report.referral is not None
    assert (report.referral.task_status.value, report.referral.status.value) == (
        "completed",
        "completed",
    )
    with session_factory(make_engine(url))() as session:
        store = Store(session)
        goal = store.goals.require("g-1001-food")
        follow_ups = [
            t for t in store.care_tasks.list_for_patient("p-1001") if t.kind == "follow-up"
        ]
    assert goal.achievement_status is not None
    assert goal.achievement_status.value == "achieved"
    assert len(follow_ups) == 1


@pytest.mark.integration
def test_demo_bills_the_month_with_reasons(tmp_path: Path, fhir_server: LocalFhirServer) -> None:
    report = run_demo(
        f"sqlite:///{tmp_path / 'demo.db'}", fhir_server.base_url, "urn:fhirbridge:test-demo-3"
    )

    assert report.billing is not None
    lines = {(line.patient_id, line.code): line for line in report.billing.lines}
    assert lines[("p-1001", "99490")].units == 1
    assert lines[("p-1002", "99424")].units == 1
    assert lines[("p-1003", "99484")].explanation == "15 of 20 minutes"


@pytest.mark.integration
def test_demo_makes_every_ehr_resource_the_caseload_points_at_exist_on_the_server(
    tmp_path: Path, fhir_server: LocalFhirServer
) -> None:
    report = run_demo(
        f"sqlite:///{tmp_path / 'demo.db'}", fhir_server.base_url, "urn:fhirbridge:test-demo-4"
    )

    referenced = ehr_references(load_caseload(CASELOAD))
    assert sorted(report.ehr.created + report.ehr.present) == sorted(referenced)
    assert report.ehr.missing == []
    for reference in referenced:
        assert httpx.get(f"{fhir_server.base_url}/{reference}").status_code == 200


@pytest.mark.integration
def test_demo_leaves_an_ehr_resource_the_server_already_has_alone(
    tmp_path: Path, fhir_server: LocalFhirServer
) -> None:
    theirs = {**load_ehr_side(EHR)["Patient/ehr-88402"], "name": [{"family": "AsTheEhrHasIt"}]}
    theirs.pop("meta")
    put = httpx.put(
        f"{fhir_server.base_url}/Patient/ehr-88402",
        json=theirs,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert put.status_code in (200, 201), put.text

    report = run_demo(
        f"sqlite:///{tmp_path / 'demo.db'}", fhir_server.base_url, "urn:fhirbridge:test-demo-5"
    )

    assert "Patient/ehr-88402" in report.ehr.present
    after = httpx.get(f"{fhir_server.base_url}/Patient/ehr-88402").json()
    assert after["name"] == [{"family": "AsTheEhrHasIt"}]
