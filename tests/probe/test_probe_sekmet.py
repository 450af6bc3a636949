"""The probe against a real FHIR server (sekmet): what works passes, what sekmet cannot do is
reported in sekmet's own words beside what its statement claims, and the probe cleans up."""

from __future__ import annotations

import httpx
import pytest

from fhirbridge.localserver import LocalFhirServer
from fhirbridge.probe import (
    PROBE_TAG_SYSTEM,
    Check,
    CheckStatus,
    Claim,
    ProbeOptions,
    ProbeRecords,
    ProbeReport,
)
from tests.probe.support import FHIR_JSON, probe

pytestmark = pytest.mark.integration
PROBED_TYPES = ProbeRecords.load().types
# sekmet's statement advertises identifier search on every type but Goal, which it does not list.
# sekmet searches every type by identifier but these (its statement does not list them).
UNSEARCHABLE = ("Goal", "CareTeam", "QuestionnaireResponse")
SEARCHABLE = tuple(t for t in PROBED_TYPES if t not in UNSEARCHABLE)


@pytest.fixture(scope="module")
def report(fhir_server: LocalFhirServer) -> ProbeReport:
    return probe(fhir_server.base_url)


def _status_of(base_url: str, reference: str) -> int:
    return httpx.get(f"{base_url}/{reference}", headers=FHIR_JSON).status_code


def test_sekmet_passes_every_required_check(report: ProbeReport) -> None:
    assert [c for c in report.checks if c.required and c.status is not CheckStatus.PASSED] == []
    assert report.passed


def test_every_check_of_every_type_is_tried(report: ProbeReport) -> None:
    tried = {(c.resource_type, c.check) for c in report.checks if c.works is not None}

    for rtype in PROBED_TYPES:
        for check in (Check.CREATE, Check.STALE_UPDATE, Check.HISTORY, Check.DELETE):
            assert (rtype, check) in tried


def test_goal_search_by_identifier_fails_in_sekmets_own_words(report: ProbeReport) -> None:
    result = report.result(Check.SEARCH_IDENTIFIER, "Goal")

    assert result.status is CheckStatus.FAILED
    assert "Unknown search parameter 'identifier' for Goal" in result.detail


def test_goal_is_tried_although_the_statement_does_not_list_it(report: ProbeReport) -> None:
    result = report.result(Check.CREATE, "Goal")

    assert (result.advertised, result.works) == (Claim.UNKNOWN, True)


def test_goal_search_by_identifier_is_not_required_since_goal_pushes_use_client_ids(
    report: ProbeReport,
) -> None:
    assert not report.result(Check.SEARCH_IDENTIFIER, "Goal").required
    client_ids = report.result(Check.CLIENT_ID, "Goal")
    assert (client_ids.status, client_ids.required) == (CheckStatus.PASSED, True)


def test_goal_conditional_create_fails_with_the_status_and_text_sekmet_sent(
    report: ProbeReport,
) -> None:
    result = report.result(Check.CONDITIONAL_CREATE, "Goal")

    assert result.status is CheckStatus.FAILED
    assert result.detail == "HTTP 400: Unknown search parameter 'identifier' for Goal"
    assert result.request is not None
    assert result.request.startswith("POST ")


@pytest.mark.parametrize("resource_type", SEARCHABLE)
def test_an_advertised_identifier_search_is_required_and_works(
    report: ProbeReport, resource_type: str
) -> None:
    for check in (Check.SEARCH_IDENTIFIER, Check.CONDITIONAL_CREATE):
        result = report.result(check, resource_type)
        assert (result.status, result.required, result.advertised) == (
            CheckStatus.PASSED,
            True,
            Claim.YES,
        ), check


@pytest.mark.parametrize("resource_type", PROBED_TYPES)
def test_a_stale_if_match_is_refused_with_412(report: ProbeReport, resource_type: str) -> None:
    result = report.result(Check.STALE_UPDATE, resource_type)

    assert result.status is CheckStatus.PASSED
    assert result.detail.startswith("HTTP 412: ")


@pytest.mark.parametrize("resource_type", PROBED_TYPES)
def test_history_lists_the_created_and_the_updated_version(
    report: ProbeReport, resource_type: str
) -> None:
    result = report.result(Check.HISTORY, resource_type)

    assert (result.status, result.detail) == (CheckStatus.PASSED, "2 versions")


@pytest.mark.parametrize("resource_type", PROBED_TYPES)
def test_last_updated_search_pages_through_every_probe_record(
    report: ProbeReport, resource_type: str
) -> None:
    result = report.result(Check.LAST_UPDATED, resource_type)

    assert result.status is CheckStatus.PASSED
    assert "pages" in result.detail


def test_a_transaction_resolves_urn_uuid_references(report: ProbeReport) -> None:
    result = report.result(Check.TRANSACTION)

    assert result.status is CheckStatus.PASSED
    assert "-> Goal/" in result.detail


def test_the_summary_shows_goal_unlisted_and_care_plan_searchable(report: ProbeReport) -> None:
    assert report.server is not None
    listed = {t.type: t for t in report.server.types}
    assert not listed["Goal"].listed
    assert listed["CarePlan"].search_params["identifier"].value == "supported"
    assert report.server.fhir_version == "4.0.1"


def test_nothing_the_probe_created_can_still_be_read(
    report: ProbeReport, fhir_server: LocalFhirServer
) -> None:
    assert report.created
    assert report.leftovers == []
    still_there = [r for r in report.created if _status_of(fhir_server.base_url, r) == 200]
    assert still_there == []


@pytest.mark.parametrize("resource_type", [*PROBED_TYPES, "Patient"])
def test_no_record_tagged_with_the_run_is_left_on_the_server(
    report: ProbeReport, fhir_server: LocalFhirServer, resource_type: str
) -> None:
    found = httpx.get(
        f"{fhir_server.base_url}/{resource_type}",
        params={"_tag": f"{PROBE_TAG_SYSTEM}|{report.run_id}"},
        headers=FHIR_JSON,
    ).json()

    assert found.get("entry", []) == []


def test_a_check_skipped_on_request_is_reported_and_does_not_fail_the_probe(
    fhir_server: LocalFhirServer,
) -> None:
    options = ProbeOptions(resource_types=("Task",), skip=frozenset({Check.STALE_UPDATE}))

    skipped = probe(fhir_server.base_url, options)

    result = skipped.result(Check.STALE_UPDATE, "Task")
    assert (result.status, result.required, result.detail) == (
        CheckStatus.SKIPPED,
        True,
        "skipped on request",
    )
    assert skipped.passed


def test_keep_leaves_the_probe_records_readable(fhir_server: LocalFhirServer) -> None:
    kept = probe(fhir_server.base_url, ProbeOptions(keep=True, resource_types=("Task",)))
    try:
        assert {item.reference for item in kept.leftovers} == set(kept.created)
        assert all(_status_of(fhir_server.base_url, r) == 200 for r in kept.created)
        assert kept.result(Check.DELETE, "Task").status is CheckStatus.SKIPPED
        assert kept.passed
    finally:
        for reference in reversed(kept.created):
            httpx.delete(f"{fhir_server.base_url}/{reference}", headers=FHIR_JSON)


def test_a_given_patient_is_used_and_not_created(fhir_server: LocalFhirServer) -> None:
    patient = httpx.post(
        f"{fhir_server.base_url}/Patient",
        json={"resourceType": "Patient", "name": [{"family": "Existing"}]},
        headers=FHIR_JSON,
    ).json()
    reference = f"Patient/{patient['id']}"

    given = probe(
        fhir_server.base_url, ProbeOptions(patient=reference, resource_types=("CarePlan",))
    )

    assert given.result(Check.PATIENT).detail == f"using {reference}"
    assert not any(r.startswith("Patient/") for r in given.created)
    assert _status_of(fhir_server.base_url, reference) == 200
