"""The records the probe writes: the mapping engine's output for the fixture records, standing
alone (only the probe patient is referenced) and marked as probe records of one run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fhirbridge.conformance import Severity, check
from fhirbridge.mapping.loader import load_mappings
from fhirbridge.probe import PROBE_IDENTIFIER_SYSTEM, PROBE_TAG_SYSTEM, ProbeRecord, ProbeRecords
from fhirbridge.probe.records import identifiers_of
from tests.conftest import ROOT

RECORDS = ProbeRecords.load()
PATIENT = "Patient/probe-patient-1"


def _record(resource_type: str, purpose: str = "main", **bound: str) -> ProbeRecord:
    return RECORDS.record(
        resource_type,
        run_id="run-1",
        purpose=purpose,
        patient=PATIENT,
        bound=bound,
    )


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def test_there_is_a_record_for_every_resource_type_fhirbridge_pushes_a_record_as() -> None:
    plan = load_mappings(ROOT / "mappings").plan
    primaries = {plan.primary(concept) for concept in plan.concepts if concept != "charge"}

    assert set(RECORDS.types) == primaries


@pytest.mark.parametrize("resource_type", RECORDS.types)
def test_each_probe_record_is_valid_r4b_for_any_profile_but_fhirbridges_own(
    resource_type: str,
) -> None:
    # fhirbridge's own conventions describe care-management records (a time entry names its
    # staff member and enrollment); a probe record stands alone, referencing only its patient.
    errors = [
        f
        for f in check(_record(resource_type).resource)
        if f.severity is Severity.ERROR and not f.rule.startswith("fhirbridge-")
    ]

    assert errors == []


@pytest.mark.parametrize("resource_type", RECORDS.types)
def test_each_probe_record_references_only_the_probe_patient(resource_type: str) -> None:
    assert set(_references(_record(resource_type).resource)) == {PATIENT}


@pytest.mark.parametrize("resource_type", RECORDS.types)
def test_each_probe_record_carries_a_probe_identifier_of_its_run_and_purpose(
    resource_type: str,
) -> None:
    record = _record(resource_type, "conditional")

    assert record.identifier["system"] == PROBE_IDENTIFIER_SYSTEM
    assert record.identifier["value"].endswith("/run-1-conditional")
    assert identifiers_of(record.resource) == [record.identifier]


@pytest.mark.parametrize("resource_type", RECORDS.types)
def test_each_probe_record_is_tagged_with_its_run(resource_type: str) -> None:
    tags = _record(resource_type).resource["meta"]["tag"]

    assert tags == [{"system": PROBE_TAG_SYSTEM, "code": "run-1"}]


def test_a_record_is_the_mapping_engines_output_with_the_mappings_profile_and_prefix() -> None:
    goal = _record("Goal")

    assert goal.resource["meta"]["profile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal"
    ]
    assert goal.identifier["value"] == "goal/run-1-main"
    assert goal.resource["description"] == {"text": "fhirbridge server probe goal"}


def test_two_purposes_of_one_run_never_share_an_identifier() -> None:
    assert _record("Task", "main").criteria != _record("Task", "conditional").criteria


def test_a_care_plan_references_a_goal_only_when_one_is_bound() -> None:
    bound = _record("CarePlan", "transaction", goal="urn:uuid:5b1c0f8e-0000-4000-8000-000000000001")

    assert "goal" not in _record("CarePlan").resource
    assert [g["reference"] for g in bound.resource["goal"]] == [
        "urn:uuid:5b1c0f8e-0000-4000-8000-000000000001"
    ]


def test_the_probe_patient_comes_from_the_fixture_with_the_run_identifier_and_tag() -> None:
    patient = RECORDS.patient(run_id="run-1").resource

    assert patient["name"] == [{"family": "Probe", "given": ["Fhirbridge"]}]
    assert patient["identifier"] == [
        {"system": PROBE_IDENTIFIER_SYSTEM, "value": "patient/run-1-patient"}
    ]
    assert patient["meta"]["tag"] == [{"system": PROBE_TAG_SYSTEM, "code": "run-1"}]
