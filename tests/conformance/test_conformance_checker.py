"""The checker: R4B validation plus the profiles that apply, and the gate before sending."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fhirbridge import conformance
from fhirbridge.conformance import ConformanceChecker, NonConformantResource, Severity

LoadResource = Callable[[str], dict[str, Any]]

CONFORMANT = [
    "careplan-us-core.json",
    "careplan-minimal.json",
    "goal-us-core.json",
    "goal-due-date-only.json",
    "task-referral.json",
    "task-referral-rejected-with-reason.json",
    "task-referral-completed.json",
    "task-care.json",
    "servicerequest-sdoh.json",
    "encounter-time-entry.json",
    "chargeitem-ccm.json",
    "episodeofcare-ccm.json",
    "consent-ccm.json",
]


@pytest.mark.parametrize("name", CONFORMANT)
def test_a_conformant_resource_has_no_error_findings(
    checker: ConformanceChecker, resource: LoadResource, name: str
) -> None:
    findings = checker.check(resource(name))

    assert [f for f in findings if f.severity is Severity.ERROR] == []


@pytest.mark.parametrize("name", CONFORMANT)
def test_a_conformant_resource_may_be_sent(
    checker: ConformanceChecker, resource: LoadResource, name: str
) -> None:
    checker.ensure_conformant(resource(name))


def test_a_fully_populated_careplan_has_no_findings_at_all(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    assert checker.check(resource("careplan-us-core.json")) == []


def test_findings_name_the_resource_by_type_and_id(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    [finding] = checker.check(resource("careplan-subject-group.json"))

    assert finding.resource == "CarePlan/cp-1"


def test_findings_for_a_resource_without_id_say_so(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-subject-group.json")
    del careplan["id"]

    [finding] = checker.check(careplan)

    assert finding.resource == "CarePlan (no id)"


def test_an_r4b_model_error_becomes_an_error_finding(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    [finding] = checker.check(resource("careplan-malformed-period.json"))

    assert finding.rule.startswith("r4b:")
    assert finding.element == "period.start"
    assert finding.severity is Severity.ERROR


def test_the_profile_rules_still_apply_when_the_r4b_model_rejects_the_resource(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-no-status.json")

    rules = {finding.rule for finding in checker.check(careplan)}

    assert "us-core-careplan:status-required" in rules
    assert any(rule.startswith("r4b:") for rule in rules)


def test_a_resource_type_r4b_does_not_know_is_an_error(checker: ConformanceChecker) -> None:
    [finding] = checker.check({"resourceType": "CarePlot", "id": "x"})

    assert finding.rule == "r4b:resource-type"
    assert finding.resource == "CarePlot/x"


def test_us_core_rules_apply_only_to_resources_that_claim_the_profile(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    claimed = resource("careplan-us-core.json")
    unclaimed = resource("careplan-unprofiled-bogus-status.json")

    assert [p.id for p in checker.applicable_profiles(claimed)] == ["us-core-careplan"]
    assert checker.applicable_profiles(unclaimed) == ()


def test_a_referral_task_is_held_to_gravity_not_to_the_care_task_convention(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    task = resource("task-referral.json")

    assert [p.id for p in checker.applicable_profiles(task)] == ["sdohcc-task-referral"]


def test_a_care_task_is_held_to_the_care_task_convention(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    task = resource("task-care.json")

    assert [p.id for p in checker.applicable_profiles(task)] == ["fhirbridge-care-task"]


def test_an_sdoh_referral_is_held_to_us_core_even_when_it_claims_only_gravity(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    request = resource("servicerequest-sdoh-only-no-code.json")

    rules = {finding.rule for finding in checker.check(request)}

    assert "us-core-servicerequest:code-required" in rules


def test_a_non_conformant_resource_is_refused_with_its_error_findings(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-subject-group.json")

    with pytest.raises(NonConformantResource) as raised:
        checker.ensure_conformant(careplan)

    error = raised.value
    assert error.resource == "CarePlan/cp-1"
    assert [(f.element, f.rule) for f in error.findings] == [
        ("subject", "us-core-careplan:subject-patient")
    ]
    assert "CarePlan/cp-1" in str(error)
    assert "subject [us-core-careplan:subject-patient]" in str(error)


def test_warnings_alone_do_not_stop_a_resource_from_being_sent(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-minimal.json")

    assert checker.check(careplan)  # must-support warnings
    checker.ensure_conformant(careplan)


def test_the_module_level_check_uses_the_shipped_profiles(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-bogus-status.json")

    assert conformance.check(careplan) == checker.check(careplan)


def test_the_module_level_gate_refuses_a_non_conformant_resource(resource: LoadResource) -> None:
    with pytest.raises(NonConformantResource):
        conformance.ensure_conformant(resource("goal-no-dates.json"))


def test_the_public_api_is_what_callers_are_told_to_use() -> None:
    assert set(conformance.__all__) == {
        "DEFAULT_PROFILES_DIR",
        "ConformanceChecker",
        "ConformanceError",
        "FileProblem",
        "Finding",
        "NonConformantResource",
        "ProfileFile",
        "ProfileFileError",
        "ProfileSet",
        "Severity",
        "check",
        "default_checker",
        "ensure_conformant",
        "load_profile_file",
        "load_profiles",
    }
