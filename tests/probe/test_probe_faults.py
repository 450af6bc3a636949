"""Failure modes the real servers cannot produce on demand, faked at the transport (respx):
the probe shows the server's own error text, tries what the statement does not advertise, and
shows a claim the server does not keep."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import httpx
import pytest
import respx

from fhirbridge.probe import Check, CheckStatus, Claim, ProbeOptions, ProbeReport
from tests.probe.support import BASE, fixture, probe


def _probe(server: respx.MockRouter | None, *resource_types: str) -> ProbeReport:
    """Probe the faked server; what no test route answers is an "unknown type" 404 (a route
    registered last, since respx takes the first route that matches)."""
    if server is not None:
        server.route(name="anything-else").respond(404, json=fixture("outcome_unknown_type.json"))
    return probe(BASE, ProbeOptions(resource_types=resource_types))


@pytest.fixture
def server() -> Iterator[respx.MockRouter]:
    """Statement, probe patient and its deletion, and "unknown type" for everything else;
    each test adds what it is about."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/metadata").respond(200, json=fixture("capability_task_only.json"))
        router.post("/Patient").respond(
            201,
            json=fixture("patient_created.json"),
            headers={"Location": f"{BASE}/Patient/probe-patient-1/_history/1"},
        )
        router.delete("/Patient/probe-patient-1", name="delete-patient").respond(204)
        yield router


def _creates_a_new_task_each_time(request: httpx.Request) -> httpx.Response:
    """A Task store that ignores If-None-Exist: every POST makes another Task."""
    number = next(_TASK_IDS)
    task = {
        **json.loads(request.content),
        "id": f"task-{number}",
        "meta": {"versionId": "1", "lastUpdated": "2026-10-15T15:00:00.000Z"},
    }
    return httpx.Response(201, json=task)


_TASK_IDS = itertools.count(1)


def test_a_server_error_shows_the_servers_diagnostics(server: respx.MockRouter) -> None:
    server.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))

    result = _probe(server, "Task").result(Check.CREATE, "Task")

    assert result.status is CheckStatus.FAILED
    assert result.detail == (
        "HTTP 500: HAPI-0389: Failed to call access method: "
        "Task storage is read-only during maintenance"
    )
    assert result.request == f"POST {BASE}/Task"


def test_a_server_error_without_an_operation_outcome_says_so(
    server: respx.MockRouter,
) -> None:
    server.post("/Task").respond(
        502, text="<html>Bad gateway</html>", headers={"Content-Type": "text/html"}
    )

    result = _probe(server, "Task").result(Check.CREATE, "Task")

    assert result.detail == "HTTP 502: (no OperationOutcome)"


def test_a_failed_create_skips_what_needs_the_record_and_says_why(
    server: respx.MockRouter,
) -> None:
    server.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))

    report = _probe(server, "Task")

    read = report.result(Check.READ, "Task")
    assert (read.status, read.detail, read.works) == (
        CheckStatus.SKIPPED,
        "needs a created Task",
        None,
    )
    assert report.result(Check.STALE_UPDATE, "Task").detail == "needs a successful update"


def test_a_failed_required_create_fails_the_probe(server: respx.MockRouter) -> None:
    server.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))

    report = _probe(server, "Task")

    assert report.result(Check.CREATE, "Task").blocking
    assert not report.passed


def test_the_skips_that_follow_a_failed_create_block_nothing(
    server: respx.MockRouter,
) -> None:
    server.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))

    report = _probe(server, "Task")

    skipped_required = [c for c in report.checks if c.required and c.status is CheckStatus.SKIPPED]
    assert {c.check for c in skipped_required} >= {Check.READ, Check.UPDATE, Check.STALE_UPDATE}
    assert not any(c.blocking for c in skipped_required)


def test_a_create_the_statement_does_not_advertise_is_tried_anyway(
    server: respx.MockRouter,
) -> None:
    result = _probe(server, "Consent").result(Check.CREATE, "Consent")

    assert (result.status, result.advertised) == (CheckStatus.FAILED, Claim.NO)
    assert result.detail == "HTTP 404: Unknown resource type"
    assert server.routes["anything-else"].called


def test_an_unadvertised_transaction_is_tried_and_its_failure_blocks_nothing(
    server: respx.MockRouter,
) -> None:
    result = _probe(server, "Consent").result(Check.TRANSACTION)

    assert (result.status, result.advertised, result.required) == (
        CheckStatus.FAILED,
        Claim.NO,
        False,
    )


def test_a_conditional_create_that_is_advertised_but_ignored_shows_advertised_yes_works_no(
    server: respx.MockRouter,
) -> None:
    server.post("/Task").mock(side_effect=_creates_a_new_task_each_time)
    server.delete(url__regex=r"/Task/task-\d+$").respond(204)

    result = _probe(server, "Task").result(Check.CONDITIONAL_CREATE, "Task")

    assert (result.advertised, result.works) == (Claim.YES, False)
    assert result.mismatch == "advertised but does not work"
    assert "If-None-Exist was ignored" in result.detail


def test_the_duplicates_an_ignored_conditional_create_made_are_deleted(
    server: respx.MockRouter,
) -> None:
    server.post("/Task").mock(side_effect=_creates_a_new_task_each_time)
    deletes = server.delete(url__regex=r"/Task/task-\d+$").respond(204)

    report = _probe(server, "Task")

    created_tasks = {r for r in report.created if r.startswith("Task/")}
    deleted = {call.request.url.path.removeprefix("/fhir/") for call in deletes.calls}
    assert len(created_tasks) >= 3  # the main record and the duplicate pair
    assert deleted == created_tasks


def test_the_probe_patient_is_deleted_even_when_the_checks_fail(
    server: respx.MockRouter,
) -> None:
    server.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))

    report = _probe(server, "Task")

    assert server.routes["delete-patient"].called
    assert report.created == ["Patient/probe-patient-1"]
    assert report.leftovers == []


def test_an_unreachable_server_is_one_failure_and_nothing_more() -> None:
    with respx.mock(base_url=BASE) as router:
        router.get("/metadata").mock(side_effect=httpx.ConnectError("connection refused"))

        report = _probe(None, "Task")

    assert [(c.check, c.status) for c in report.checks] == [
        (Check.CAPABILITIES, CheckStatus.FAILED)
    ]
    assert report.unreachable is not None
    assert "connection refused" in report.unreachable
    assert not report.passed


def test_an_r5_server_fails_the_capability_check(server: respx.MockRouter) -> None:
    server.get("/metadata").respond(
        200, json={**fixture("capability_task_only.json"), "fhirVersion": "5.0.0"}
    )

    result = _probe(server, "Task").result(Check.CAPABILITIES)

    assert result.status is CheckStatus.FAILED
    assert result.detail.endswith("fhirbridge speaks FHIR R4 (4.0.x)")


def test_a_type_without_a_probe_record_is_refused_before_any_request() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        metadata = router.get("/metadata").respond(200, json=fixture("capability_task_only.json"))

        with pytest.raises(ValueError, match="no probe record for MedicationRequest"):
            probe(BASE, ProbeOptions(resource_types=("MedicationRequest",)))

    assert not metadata.called


def test_a_delete_that_leaves_the_record_readable_fails_and_lists_it_as_left_over(
    server: respx.MockRouter,
) -> None:
    server.post("/Task").mock(side_effect=_creates_a_new_task_each_time)
    server.delete(url__regex=r"/Task/task-\d+$").respond(204)
    server.get(url__regex=r"/Task/task-\d+$").mock(side_effect=_still_there)

    report = _probe(server, "Task")

    result = report.result(Check.DELETE, "Task")
    assert (result.status, result.advertised, result.works) == (
        CheckStatus.FAILED,
        Claim.YES,
        False,
    )
    assert result.detail.endswith("can still be read after the delete")
    assert [item.reason for item in report.leftovers] == ["delete failed"]


def _still_there(request: httpx.Request) -> httpx.Response:
    rid = request.url.path.rsplit("/", 1)[-1]
    return httpx.Response(
        200,
        json={
            "resourceType": "Task",
            "id": rid,
            "meta": {"versionId": "1", "lastUpdated": "2026-10-15T15:00:00.000Z"},
        },
    )


def test_without_a_statement_every_check_is_still_tried_and_shown_as_unknown(
    server: respx.MockRouter,
) -> None:
    server.get("/metadata").respond(404, json=fixture("outcome_unknown_type.json"))
    server.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))

    report = _probe(server, "Task")

    statement = report.result(Check.CAPABILITIES)
    create = report.result(Check.CREATE, "Task")
    assert (statement.status, statement.detail) == (
        CheckStatus.FAILED,
        "HTTP 404: Unknown resource type",
    )
    assert (create.status, create.advertised) == (CheckStatus.FAILED, Claim.UNKNOWN)
    assert "Task storage is read-only during maintenance" in create.detail
