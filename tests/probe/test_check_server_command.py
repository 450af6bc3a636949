"""`check-server` renders the probe: a table (or JSON) and an exit code a script can trust."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import respx
import typer
from typer.testing import CliRunner

from fhirbridge.commands.check_server import check_server
from fhirbridge.localserver import LocalFhirServer
from tests.probe.test_probe_faults import BASE, fixture

WIDE = {"COLUMNS": "400"}


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(check_server)
    return app


@pytest.fixture
def failing_server() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/metadata").respond(200, json=fixture("capability_task_only.json"))
        router.post("/Patient").respond(201, json=fixture("patient_created.json"))
        router.delete("/Patient/probe-patient-1").respond(204)
        router.post("/Task").respond(500, json=fixture("outcome_task_store_down.json"))
        router.route().respond(404, json=fixture("outcome_unknown_type.json"))
        yield router


@pytest.mark.integration
def test_json_output_against_sekmet_exits_0_and_names_the_goal_limitation(
    cli: typer.Typer, fhir_server: LocalFhirServer
) -> None:
    result = CliRunner().invoke(cli, [fhir_server.base_url, "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] is True
    goal_search = next(
        c
        for c in report["checks"]
        if (c["resource_type"], c["check"]) == ("Goal", "search by identifier")
    )
    assert goal_search["status"] == "fail"
    assert "Unknown search parameter 'identifier' for Goal" in goal_search["detail"]


@pytest.mark.integration
def test_the_table_shows_sekmets_own_error_text(
    cli: typer.Typer, fhir_server: LocalFhirServer
) -> None:
    result = CliRunner().invoke(cli, [fhir_server.base_url], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "HTTP 400: Unknown search parameter 'identifier' for Goal" in result.output
    assert "every required check passed" in result.output


def test_a_failing_server_exits_1_with_its_diagnostics(
    cli: typer.Typer, failing_server: respx.MockRouter
) -> None:
    result = CliRunner().invoke(cli, [BASE], env=WIDE)

    assert result.exit_code == 1
    assert "Task storage is read-only during maintenance" in result.output
    assert "required check(s) did not pass" in result.output


def test_unadvertised_interactions_show_as_not_advertised(
    cli: typer.Typer, failing_server: respx.MockRouter
) -> None:
    result = CliRunner().invoke(cli, [BASE], env=WIDE)

    consent_rows = [line for line in result.output.splitlines() if "Consent" in line]
    assert any("not advertised" in line for line in consent_rows)


def test_a_patient_option_that_is_not_a_patient_reference_is_refused(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, [BASE, "--patient", "Group/7"])

    assert result.exit_code == 2
