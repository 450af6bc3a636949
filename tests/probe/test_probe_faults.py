"""Failure modes the real server cannot produce on demand, faked at the transport (respx):
the probe shows the server's own error text, and what is not advertised is skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import respx

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.services.probe import Check, CheckStatus, ProbeOptions, ProbeReport, probe_server

BASE = "http://127.0.0.1:9/fhir"
PROBE_FIXTURES = PROJECT_ROOT / "fixtures" / "probe"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PROBE_FIXTURES / name).read_text())
    return loaded


def _probe(*resource_types: str) -> ProbeReport:
    options = ProbeOptions(resource_types=resource_types, max_retries=0)

    async def go() -> ProbeReport:
        return await probe_server(BASE, options=options)

    return anyio.run(go)


@pytest.fixture
def server() -> Iterator[respx.MockRouter]:
    """Statement, probe patient and its deletion; each test adds what it is about."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/metadata").respond(200, json=fixture("capability_task_only.json"))
        router.post("/Patient").respond(
            201,
            json=fixture("patient_created.json"),
            headers={"Location": f"{BASE}/Patient/probe-patient-1/_history/1"},
        )
        router.delete("/Patient/probe-patient-1", name="delete-patient").respond(204)
        yield router


def test_a_server_error_shows_the_servers_diagnostics(server: respx.MockRouter) -> None:
    server.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))

    result = _probe("Task").result(Check.CREATE, "Task")

    assert result.status is CheckStatus.FAILED
    assert result.detail == (
        "HTTP 500: HAPI-0389: Failed to call access method: "
        "Task storage is read-only during maintenance"
    )
    assert result.request == f"POST {BASE}/Task"


def test_a_server_error_without_an_operation_outcome_says_so(server: respx.MockRouter) -> None:
    server.post("/Task").respond(
        502, text="<html>Bad gateway</html>", headers={"Content-Type": "text/html"}
    )

    result = _probe("Task").result(Check.CREATE, "Task")

    assert result.detail == "HTTP 502: (no OperationOutcome)"


def test_a_failed_create_skips_what_needs_the_record(server: respx.MockRouter) -> None:
    server.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))

    report = _probe("Task")

    assert [c.check for c in report.checks if c.resource_type == "Task"] == [Check.CREATE]
    assert not report.passed


def test_a_create_the_statement_does_not_advertise_is_skipped_and_fails_the_probe(
    server: respx.MockRouter,
) -> None:
    report = _probe("Consent")

    result = report.result(Check.CREATE, "Consent")
    assert (result.status, result.detail) == (CheckStatus.SKIPPED, "not advertised")
    assert result.blocking
    assert not report.passed


def test_no_transaction_support_is_skipped_without_failing(server: respx.MockRouter) -> None:
    result = _probe("Consent").result(Check.TRANSACTION)

    assert (result.status, result.detail, result.required) == (
        CheckStatus.SKIPPED,
        "not advertised",
        False,
    )


def test_the_probe_patient_is_deleted_even_when_the_checks_fail(
    server: respx.MockRouter,
) -> None:
    server.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))

    report = _probe("Task")

    assert server.routes["delete-patient"].called
    assert report.created == ["Patient/probe-patient-1"]
    assert report.leftovers == []


def test_an_unreachable_server_is_one_failure_and_nothing_more() -> None:
    with respx.mock(base_url=BASE) as router:
        router.get("/metadata").mock(side_effect=httpx.ConnectError("connection refused"))

        report = _probe("Task")

    assert [(c.check, c.status) for c in report.checks] == [
        (Check.CAPABILITIES, CheckStatus.FAILED)
    ]
    assert "connection refused" in report.checks[0].detail


def test_an_r5_server_fails_the_capability_check() -> None:
    statement = {**fixture("capability_task_only.json"), "fhirVersion": "5.0.0"}
    with respx.mock(base_url=BASE) as router:
        router.get("/metadata").respond(200, json=statement)
        router.post("/Patient").respond(201, json=fixture("patient_created.json"))
        router.delete("/Patient/probe-patient-1").respond(204)

        result = _probe().result(Check.CAPABILITIES)

    assert result.status is CheckStatus.FAILED
    assert result.detail.endswith("fhirbridge speaks FHIR R4 (4.0.x)")
