"""The records the probe writes are ones a validating server has no reason to refuse."""

from __future__ import annotations

import pytest

from fhirbridge.conformance import Severity, check
from fhirbridge.services.probe import PROBE_TAG_SYSTEM, PROBED_TYPES, probe_resource

IDENTIFIER = {"system": "urn:fhirbridge:probe", "value": "run-1/Goal/main"}


def _record(resource_type: str) -> dict[str, object]:
    return probe_resource(
        resource_type,
        identifier=IDENTIFIER,
        patient="Patient/probe-patient-1",
        run_id="run-1",
        goals=["Goal/g-1"] if resource_type == "CarePlan" else (),
    )


@pytest.mark.parametrize("resource_type", PROBED_TYPES)
def test_each_probe_record_is_valid_r4b_for_any_profile_but_fhirbridges_own(
    resource_type: str,
) -> None:
    # fhirbridge's own conventions describe care-management records (a time entry names its
    # staff member and enrollment); a probe record stands alone, referencing only its patient.
    errors = [
        f
        for f in check(_record(resource_type))
        if f.severity is Severity.ERROR and not f.rule.startswith("fhirbridge-")
    ]

    assert errors == []


@pytest.mark.parametrize("resource_type", PROBED_TYPES)
def test_each_probe_record_carries_the_probe_identifier_and_run_tag(resource_type: str) -> None:
    record = _record(resource_type)

    assert record["identifier"] == [IDENTIFIER]
    assert record["meta"] == {"tag": [{"system": PROBE_TAG_SYSTEM, "code": "run-1"}]}


def test_a_probe_care_plan_references_its_goals() -> None:
    assert _record("CarePlan")["goal"] == [{"reference": "Goal/g-1"}]
