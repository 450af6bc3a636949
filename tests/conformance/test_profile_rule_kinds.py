"""Each rule kind, through the shipped profiles: a conformant and a non-conformant resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhirbridge.conformance import ConformanceChecker, Finding, Severity

LoadResource = Callable[[str], dict[str, Any]]


def findings_of(checker: ConformanceChecker, resource: dict[str, Any], rule: str) -> list[Finding]:
    return [finding for finding in checker.check(resource) if finding.rule == rule]


# --- required ---------------------------------------------------------------------------------


def test_required_is_met_when_the_element_is_there(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-us-core.json")

    assert findings_of(checker, careplan, "us-core-careplan:category-required") == []


def test_required_reports_a_missing_element_as_an_error(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-no-category.json")

    [finding] = findings_of(checker, careplan, "us-core-careplan:category-required")
    assert finding.element == "category"
    assert finding.severity is Severity.ERROR


def test_required_counts_entries_of_a_list(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    encounter = resource("encounter-time-entry-no-type.json")

    [finding] = findings_of(checker, encounter, "us-core-encounter:type-required")
    assert finding.element == "type"


# --- fixed ------------------------------------------------------------------------------------


def test_fixed_coding_is_met_when_a_category_carries_it(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-us-core.json")

    assert findings_of(checker, careplan, "us-core-careplan:category-assess-plan") == []


def test_fixed_coding_fails_when_no_category_carries_it(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-category-without-assess-plan.json")

    [finding] = findings_of(checker, careplan, "us-core-careplan:category-assess-plan")
    assert finding.element == "category.coding"
    assert "careplan-category|assess-plan" in finding.message


def test_fixed_value_is_met_by_the_fixed_value(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    task = resource("task-referral.json")

    assert findings_of(checker, task, "sdohcc-task-referral:intent-order") == []


def test_fixed_value_fails_on_any_other_value(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    task = resource("task-referral-intent-plan.json")

    [finding] = findings_of(checker, task, "sdohcc-task-referral:intent-order")
    assert finding.element == "intent"
    assert finding.message == "is 'plan'; must be 'order'"


def test_fixed_with_a_context_is_checked_for_every_output(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    rule = "sdohcc-task-referral:output-type-resulting-activity"

    assert findings_of(checker, resource("task-referral-completed.json"), rule) == []
    [finding] = findings_of(checker, resource("task-referral-output-untyped.json"), rule)
    assert finding.element == "output.type.coding"


def test_fixed_value_with_a_context_catches_a_length_not_in_minutes(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    rule = "fhirbridge-time-entry:length-in-minutes-code"

    assert findings_of(checker, resource("encounter-time-entry.json"), rule) == []
    [finding] = findings_of(checker, resource("encounter-time-entry-length-in-hours.json"), rule)
    assert finding.element == "length.code"


# --- binding ----------------------------------------------------------------------------------


def test_binding_accepts_a_code_from_the_value_set(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-us-core.json")

    assert findings_of(checker, careplan, "us-core-careplan:status-binding") == []


def test_binding_rejects_a_code_outside_the_value_set(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-bogus-status.json")

    [finding] = findings_of(checker, careplan, "us-core-careplan:status-binding")
    assert finding.element == "status"
    assert "'in-force'" in finding.message


def test_binding_is_not_applied_to_a_resource_that_does_not_claim_the_profile(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-unprofiled-bogus-status.json")

    assert findings_of(checker, careplan, "us-core-careplan:status-binding") == []


def test_binding_on_codings_needs_one_sdoh_category_when_matching_any(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    rule = "sdohcc-servicerequest:sdoh-category"

    assert findings_of(checker, resource("servicerequest-sdoh.json"), rule) == []
    [finding] = findings_of(checker, resource("servicerequest-sdoh-no-sdoh-category.json"), rule)
    assert finding.element == "category.coding"


def test_binding_on_a_coding_system_rejects_a_local_billing_code(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    rule = "fhirbridge-chargeitem:code-cpt-or-hcpcs"

    assert findings_of(checker, resource("chargeitem-ccm.json"), rule) == []
    assert len(findings_of(checker, resource("chargeitem-local-code-system.json"), rule)) == 1


def test_binding_rejects_an_enrollment_status_r4_does_not_have(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    episode = resource("episodeofcare-bogus-status.json")

    [finding] = findings_of(checker, episode, "fhirbridge-episodeofcare:status-binding")
    assert finding.element == "status"


# --- reference_target -------------------------------------------------------------------------


def test_reference_target_accepts_a_patient_subject(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-us-core.json")

    assert findings_of(checker, careplan, "us-core-careplan:subject-patient") == []


def test_reference_target_rejects_a_group_subject(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-subject-group.json")

    [finding] = findings_of(checker, careplan, "us-core-careplan:subject-patient")
    assert finding.element == "subject"
    assert finding.message == "points at a Group; must point at Patient"


def test_reference_target_reads_the_type_from_an_absolute_versioned_url(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-subject-absolute-url.json")

    assert findings_of(checker, careplan, "us-core-careplan:subject-patient") == []


def test_reference_target_needs_reference_type_on_a_urn_uuid(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    rule = "us-core-careplan:subject-patient"

    assert findings_of(checker, resource("careplan-subject-urn-uuid-typed.json"), rule) == []
    [finding] = findings_of(checker, resource("careplan-subject-urn-uuid-untyped.json"), rule)
    assert "Reference.type" in finding.message


def test_reference_target_checks_every_reference_in_a_list(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-goal-points-at-condition.json")

    [finding] = findings_of(checker, careplan, "us-core-careplan:goal-target")
    assert finding.element == "goal"


def test_reference_target_with_a_context_checks_each_output_reference(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    rule = "sdohcc-task-referral:output-procedure"

    assert findings_of(checker, resource("task-referral-completed.json"), rule) == []
    [finding] = findings_of(checker, resource("task-referral-output-not-procedure.json"), rule)
    assert finding.element == "output.valueReference"


# --- one_of_required --------------------------------------------------------------------------


def test_one_of_required_is_met_by_a_start_date(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    goal = resource("goal-us-core.json")

    assert findings_of(checker, goal, "us-core-goal:start-or-due-date") == []


def test_one_of_required_is_met_by_a_target_due_date_alone(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    goal = resource("goal-due-date-only.json")

    assert findings_of(checker, goal, "us-core-goal:start-or-due-date") == []


def test_one_of_required_fails_when_neither_is_there(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    goal = resource("goal-no-dates.json")

    [finding] = findings_of(checker, goal, "us-core-goal:start-or-due-date")
    assert finding.element == "startDate|target.dueDate"
    assert finding.severity is Severity.ERROR


def test_one_of_required_keeps_the_r4_consent_policy_invariant(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    rule = "fhirbridge-consent:policy-or-rule"

    assert findings_of(checker, resource("consent-ccm.json"), rule) == []
    assert len(findings_of(checker, resource("consent-no-policy.json"), rule)) == 1


# --- required_when ----------------------------------------------------------------------------


def test_required_when_is_met_by_a_rejection_with_its_reason(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    task = resource("task-referral-rejected-with-reason.json")

    assert findings_of(checker, task, "sdohcc-task-referral:status-reason-text") == []


def test_required_when_reports_a_rejection_without_a_reason(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    task = resource("task-referral-rejected-without-reason.json")

    [finding] = findings_of(checker, task, "sdohcc-task-referral:status-reason-text")
    assert finding.element == "statusReason.text"
    assert finding.message == "is required when status is 'rejected'"


def test_required_when_does_not_apply_while_the_condition_does_not_hold(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    task = resource("task-referral.json")

    assert findings_of(checker, task, "sdohcc-task-referral:status-reason-text") == []


def test_required_when_can_be_a_warning(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    task = resource("task-referral-completed-without-output.json")

    [finding] = findings_of(checker, task, "sdohcc-task-referral:output-when-completed")
    assert finding.severity is Severity.WARNING


# --- must_support -----------------------------------------------------------------------------


def test_must_support_is_silent_when_the_elements_are_emitted(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-us-core.json")

    assert [f for f in checker.check(careplan) if f.severity is Severity.WARNING] == []


def test_must_support_reports_each_missing_element_as_a_warning(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-minimal.json")

    warnings = [f for f in checker.check(careplan) if f.severity is Severity.WARNING]
    assert {f.element for f in warnings} == {
        "text",
        "contributor",
        "period",
        "goal",
        "activity",
        "addresses",
    }
    assert all(f.rule.startswith("us-core-careplan:ms-") for f in warnings)


def test_must_support_with_alternatives_is_met_by_either(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    encounter = resource("encounter-time-entry.json")

    assert findings_of(checker, encounter, "us-core-encounter:ms-reason") == []
    assert findings_of(checker, encounter, "us-core-encounter:ms-location-or-provider") == []


# --- allowed_values ---------------------------------------------------------------------------


def test_allowed_values_accepts_a_status_gravity_allows(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    task = resource("task-referral.json")

    assert findings_of(checker, task, "sdohcc-task-referral:status-allowed") == []


def test_allowed_values_rejects_ready_although_r4_has_it(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    task = resource("task-referral-ready.json")

    [finding] = findings_of(checker, task, "sdohcc-task-referral:status-allowed")
    assert finding.element == "status"
    assert findings_of(checker, task, "sdohcc-task-referral:status-binding") == []


# --- narrative --------------------------------------------------------------------------------


def test_narrative_accepts_generated_xhtml(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-us-core.json")

    assert findings_of(checker, careplan, "us-core-careplan:narrative-form") == []


def test_narrative_rejects_a_status_other_than_generated_or_additional(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-narrative-empty-status.json")

    [finding] = findings_of(checker, careplan, "us-core-careplan:narrative-form")
    assert finding.element == "text.status"


def test_narrative_rejects_a_div_outside_the_xhtml_namespace(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-narrative-not-xhtml.json")

    [finding] = findings_of(checker, careplan, "us-core-careplan:narrative-form")
    assert finding.element == "text.div"


def test_narrative_leaves_an_absent_text_to_must_support(
    checker: ConformanceChecker, resource: LoadResource
) -> None:
    careplan = resource("careplan-minimal.json")

    assert findings_of(checker, careplan, "us-core-careplan:narrative-form") == []
