"""`check-server` renders the probe: a table with advertised and works side by side (or JSON),
and an exit code a script can trust."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import respx
from typer.testing import CliRunner

from fhirbridge.cli import app
from fhirbridge.localserver import LocalFhirServer, free_port
from tests.probe.support import BASE, fixture
from tests.servers.strict import StrictFhirServer

WIDE = {"COLUMNS": "400"}
runner = CliRunner()


@pytest.fixture
def failing_server() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/metadata").respond(200, json=fixture("capability_task_only.json"))
        router.post("/Patient").respond(201, json=fixture("patient_created.json"))
        router.delete("/Patient/probe-patient-1").respond(204)
        router.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))
        router.route().respond(404, json=fixture("outcome_unknown_type.json"))
        yield router


def _cells(output: str, resource_type: str, check: str) -> list[str]:
    """The cells of the checks table's row for ``check`` of ``resource_type``."""
    rows = [
        cells
        for line in output.splitlines()
        if (cells := [cell.strip() for cell in line.split("│")[1:-1]])[:2] == [resource_type, check]
    ]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.integration
def test_json_output_against_sekmet_exits_0_and_names_the_goal_limitation(
    fhir_server: LocalFhirServer,
) -> None:
    result = runner.invoke(app, ["check-server", fhir_server.base_url, "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True
    goal_search = next(
        c
        for c in report["checks"]
        if (c["resource_type"], c["check"]) == ("Goal", "search by identifier")
    )
    assert (goal_search["status"], goal_search["advertised"], goal_search["works"]) == (
        "fail",
        "unknown",
        "no",
    )
    assert "Unknown search parameter 'identifier' for Goal" in goal_search["detail"]


@pytest.mark.integration
def test_the_table_shows_sekmets_own_error_text(fhir_server: LocalFhirServer) -> None:
    result = runner.invoke(app, ["check-server", fhir_server.base_url], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "HTTP 400: Unknown search parameter 'identifier' for Goal" in result.output
    assert "every required check passed" in result.output


@pytest.mark.integration
def test_the_table_shows_a_refused_stale_if_match_as_advertised_no_works_yes(
    strict_fhir_server: StrictFhirServer,
) -> None:
    result = runner.invoke(app, ["check-server", strict_fhir_server.base_url], env=WIDE)

    assert result.exit_code == 0, result.output
    cells = _cells(result.output, "Task", "stale If-Match refused")
    assert cells[2:6] == ["pass", "yes", "no", "yes"]  # result, required, advertised, works
    assert "works but is not advertised: HTTP 412" in cells[6]


@pytest.mark.integration
def test_a_required_check_skipped_on_request_exits_0(fhir_server: LocalFhirServer) -> None:
    result = runner.invoke(
        app,
        ["check-server", fhir_server.base_url, "--json", "--skip", "stale-update"],
    )

    assert result.exit_code == 0, result.output
    skipped = [
        c for c in json.loads(result.stdout)["checks"] if c["check"] == "stale If-Match refused"
    ]
    assert skipped
    assert {(c["status"], c["required"], c["detail"]) for c in skipped} == {
        ("skipped", True, "skipped on request")
    }


def test_a_failing_server_exits_1_with_its_diagnostics(failing_server: respx.MockRouter) -> None:
    result = runner.invoke(app, ["check-server", BASE], env=WIDE)

    assert result.exit_code == 1
    assert "Task storage is read-only during maintenance" in result.output
    assert "required check(s) failed" in result.output


def test_an_unadvertised_create_is_tried_and_shown_as_advertised_no(
    failing_server: respx.MockRouter,
) -> None:
    result = runner.invoke(app, ["check-server", BASE], env=WIDE)

    cells = _cells(result.output, "Consent", "create")
    assert cells[2:6] == ["fail", "yes", "no", "no"]
    assert "HTTP 404: Unknown resource type" in cells[6]


def test_an_unreachable_server_is_one_line_naming_the_url_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FHIRBRIDGE_FHIR_MAX_RETRIES", "0")
    url = f"http://127.0.0.1:{free_port()}/fhir"

    result = runner.invoke(app, ["check-server", url, "--timeout", "2"])

    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: cannot reach FHIR server {url}: connection refused"
    ]


def test_an_unknown_check_to_skip_is_refused_naming_the_checks() -> None:
    result = runner.invoke(app, ["check-server", BASE, "--skip", "telepathy"])

    assert result.exit_code == 2
    assert "stale-update" in result.output


def test_a_patient_option_that_is_not_a_patient_reference_is_refused() -> None:
    result = runner.invoke(app, ["check-server", BASE, "--patient", "Group/7"])

    assert result.exit_code == 2


def test_credentials_refused_on_the_statement_are_one_line_and_exit_3() -> None:
    with respx.mock(base_url=BASE) as router:
        router.get("/metadata").respond(
            401,
            json={
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "login", "diagnostics": "token expired"}],
            },
        )

        result = runner.invoke(app, ["check-server", BASE, "--token", "expired-token"])

    assert result.exit_code == 3
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"error: the FHIR server {BASE} refused our credentials")
