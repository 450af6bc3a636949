"""The probe against the strict FHIR server (opaque version ids, referential integrity, and a
statement that advertises ``versioning: versioned`` while honouring If-Match): behaviour
decides, so a server that works passes, and where its statement under-claims, the report says
so beside the result."""

from __future__ import annotations

import httpx
import pytest

from fhirbridge.probe import Check, CheckStatus, Claim, ProbeReport
from tests.probe.support import FHIR_JSON, probe
from tests.servers.strict import StrictFhirServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(strict_fhir_server: StrictFhirServer) -> ProbeReport:
    return probe(strict_fhir_server.base_url)


def test_the_strict_server_passes_every_required_check(report: ProbeReport) -> None:
    assert [c for c in report.checks if c.blocking] == []
    assert report.passed


def test_a_stale_if_match_is_refused_although_versioned_update_is_not_advertised(
    report: ProbeReport,
) -> None:
    result = report.result(Check.STALE_UPDATE, "Task")

    assert result.status is CheckStatus.PASSED
    assert result.detail.startswith("HTTP 412: ")


def test_the_stale_if_match_check_shows_advertised_no_beside_works_yes(
    report: ProbeReport,
) -> None:
    result = report.result(Check.STALE_UPDATE, "Task")

    assert (result.advertised, result.works) == (Claim.NO, True)
    assert result.mismatch == "works but is not advertised"


def test_the_summary_shows_the_versioning_the_server_advertises(report: ProbeReport) -> None:
    assert report.server is not None
    task = next(t for t in report.server.types if t.type == "Task")

    assert task.versioning == "versioned"


def test_an_earlier_opaque_version_is_read_back(report: ProbeReport) -> None:
    result = report.result(Check.VREAD, "Task")

    assert result.status is CheckStatus.PASSED
    assert not result.detail.removeprefix("version ").split(" ")[0].isdigit()


def test_nothing_the_probe_created_is_left_on_the_strict_server(
    report: ProbeReport, strict_fhir_server: StrictFhirServer
) -> None:
    still_there = [
        reference
        for reference in report.created
        if httpx.get(f"{strict_fhir_server.base_url}/{reference}", headers=FHIR_JSON).status_code
        == 200
    ]

    assert report.created
    assert (report.leftovers, still_there) == ([], [])
