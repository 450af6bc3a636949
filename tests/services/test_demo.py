"""The demo job plays the EHR, stores the caseload, pushes it to a real FHIR server, closes the
food referral's loop and bills the month; repeating it is safe. With fixtures/demo/programs it
also shows one RPM patient, one discharge with its TCM deadlines and a PHQ-9 that asks for a
same-day follow-up."""

from __future__ import annotations

from datetime import date
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
from fhirbridge.services.demo_programs import load_programs
from tests.sessions import session_factory

DEMO = PROJECT_ROOT / "fixtures" / "demo"
CASELOAD = DEMO / "caseload.yaml"
EHR = DEMO / "ehr"
PROGRAMS = DEMO / "programs"
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
            programs_dir=PROGRAMS,
        )

    return anyio.run(go)


def test_every_ehr_resource_the_demo_caseload_points_at_has_a_fixture() -> None:
    referenced = ehr_references(load_caseload(CASELOAD)) + ehr_references(
        load_programs(PROGRAMS).records
    )

    assert sorted(set(referenced)) == sorted(load_ehr_side(EHR))


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
        "EpisodeOfCare": 4,  # three, and p-1001's RPM enrollment
        "Consent": 4,
        "Goal": 5,
        "CarePlan": 3,
        # six, the food referral's follow-up call, the two TCM deadlines, the PHQ-9 follow-up
        "Task": 10,
        "Encounter": 8,  # six time entries, the TCM contact and visit
        "ServiceRequest": 2,
        "ChargeItem": 6,  # 99490, 99424, 99457, 99453, 99454, 99496
        "QuestionnaireResponse": 1,  # the PHQ-9
        "Observation": 10,  # its total and nine items
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


# -- the new programs: one demo run on the shared server, read by the tests below ----------


@pytest.fixture(scope="module")
def programs_run(
    tmp_path_factory: pytest.TempPathFactory, fhir_server: LocalFhirServer
) -> tuple[DemoReport, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo-programs') / 'demo.db'}"
    return run_demo(url, fhir_server.base_url, "urn:fhirbridge:test-demo-programs"), url


@pytest.mark.integration
def test_demo_rpm_patient_earns_device_supply_for_18_days_with_readings(
    programs_run: tuple[DemoReport, str],
) -> None:
    report, _ = programs_run

    assert report.rpm is not None
    assert (report.rpm.stored, report.rpm.refused) == (18, [])
    assert report.billing is not None
    lines = {(line.patient_id, line.code): line for line in report.billing.lines}
    supply = lines[("p-1001", "99454")]
    assert (supply.earned, supply.units) == (True, 1)
    assert supply.explanation == "18 days with readings (period 1, 2026-10-01 to 2026-10-30)"
    assert lines[("p-1001", "99453")].earned


@pytest.mark.integration
def test_demo_rpm_call_and_ccm_minutes_both_bill_without_counting_twice(
    programs_run: tuple[DemoReport, str],
) -> None:
    report, _ = programs_run

    assert report.billing is not None
    lines = {(line.patient_id, line.code): line for line in report.billing.lines}
    assert (lines[("p-1001", "99457")].units, lines[("p-1001", "99457")].minutes) == (1, 22)
    assert (lines[("p-1001", "99490")].units, lines[("p-1001", "99490")].minutes) == (1, 32)


@pytest.mark.integration
def test_demo_rpm_reading_above_the_goal_is_on_the_month_end_worklist(
    programs_run: tuple[DemoReport, str],
) -> None:
    report, _ = programs_run

    assert report.rpm is not None
    assert [(a.kind.value, a.summary) for a in report.rpm.alerts] == [
        (
            "out-of-range",
            "values outside target: systolic 138 above 130 "
            "(goal: Systolic blood pressure under 130 mmHg)",
        )
    ]


@pytest.mark.integration
def test_demo_discharge_opens_a_period_due_around_columbus_day(
    programs_run: tuple[DemoReport, str],
) -> None:
    report, _ = programs_run

    tcm = report.tcm
    assert tcm is not None
    assert (tcm.discharge, tcm.discharged_on) == ("Encounter/ehr-enc-77120", date(2026, 10, 9))
    # Friday's discharge; Monday 10-12 is Columbus Day: business day 2 is Wednesday.
    assert tcm.holidays == [date(2026, 10, 12)]
    assert (tcm.contact_due, tcm.visit_due) == (date(2026, 10, 14), date(2026, 10, 16))
    assert sorted((str(t.kind), t.status.value) for t in tcm.tasks) == [
        ("tcm-contact", "completed"),
        ("tcm-visit", "completed"),
    ]


@pytest.mark.integration
def test_demo_discharge_earns_99496_for_a_high_complexity_visit_on_day_7(
    programs_run: tuple[DemoReport, str],
) -> None:
    report, _ = programs_run

    assert report.billing is not None
    lines = {(line.patient_id, line.code): line for line in report.billing.lines}
    visit = lines[("p-1002", "99496")]
    assert (visit.earned, visit.units) == (True, 1)
    assert visit.explanation is not None
    assert "visit on day 7, within 7" in visit.explanation
    assert report.tcm is not None
    assert report.tcm.judgement is not None
    assert report.tcm.judgement.earned is not None
    assert report.tcm.judgement.earned.code == "99496"


@pytest.mark.integration
def test_demo_phq9_item_9_creates_an_urgent_task_due_the_same_day(
    programs_run: tuple[DemoReport, str],
) -> None:
    report, _ = programs_run

    phq9 = report.phq9
    assert phq9 is not None
    assert (phq9.total, phq9.band, phq9.authored_on) == (14, "moderate", date(2026, 10, 20))
    task = phq9.follow_up
    assert task is not None
    assert task.priority is not None
    assert (task.priority.value, task.due_start, task.due_end) == (
        "urgent",
        date(2026, 10, 20),
        date(2026, 10, 20),
    )


@pytest.mark.integration
def test_demo_phq9_response_and_its_observations_reach_the_server(
    programs_run: tuple[DemoReport, str], fhir_server: LocalFhirServer
) -> None:
    report, url = programs_run

    assert report.phq9 is not None
    assert report.phq9.assessment_id is not None
    with session_factory(make_engine(url))() as session:
        links = Store(session).fhir_links.for_record(
            EntityKind.ASSESSMENT, report.phq9.assessment_id
        )
    assert [link.resource_type for link in links] == ["QuestionnaireResponse"]
    response = httpx.get(f"{fhir_server.base_url}/QuestionnaireResponse/{links[0].server_id}")
    assert response.status_code == 200
    assert response.json()["questionnaire"] == "http://loinc.org/q/44249-1"
    assert report.phq9.observations == report.resources_by_type["Observation"] == 10


@pytest.mark.integration
def test_demo_with_the_new_programs_still_finishes_without_dead_letters(
    programs_run: tuple[DemoReport, str],
) -> None:
    report, _ = programs_run

    assert (report.dead_letters, report.conflicts, report.skipped) == ([], [], [])
    assert report.finished


@pytest.mark.integration
def test_demo_repeated_on_its_database_records_the_tcm_contacts_and_the_phq9_once(
    tmp_path: Path, fhir_server: LocalFhirServer
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    run_demo(url, fhir_server.base_url, "urn:fhirbridge:test-demo-repeat")

    again = run_demo(url, fhir_server.base_url, "urn:fhirbridge:test-demo-repeat")

    assert again.finished
    with session_factory(make_engine(url))() as session:
        store = Store(session)
        (period,) = store.tcm_periods.list_for_patient("p-1002")
        contacts = store.tcm_contacts.list_for_period(period.id)
        responses = store.assessments.history("p-1003")
    assert sorted(str(c.kind) for c in contacts) == ["face-to-face-visit", "interactive-contact"]
    assert len(responses) == 1
    assert again.phq9 is not None
    assert again.phq9.follow_up is not None
