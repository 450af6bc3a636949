"""The command line, driven as a user would (through Typer's runner, real database and server)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirbridge.caseload import load_caseload
from fhirbridge.cli import app
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.services.caseload import store_caseload
from tests.servers.fixtures import StrictServerFactory
from tests.sessions import session_factory

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FHIRBRIDGE_DATABASE_URL", url)
    monkeypatch.setenv("FHIRBRIDGE_IDENTIFIER_SYSTEM", f"urn:fhirbridge:cli-{tmp_path.name}")
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    engine = make_engine(url)
    with unit_of_work(session_factory(engine)) as session:
        store_caseload(
            store=Store(session),
            caseload=load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"),
        )
    engine.dispose()
    return url


def test_billing_report_as_csv_lists_earned_and_missed_codes(database: str) -> None:
    result = runner.invoke(
        app,
        [
            "billing",
            "report",
            "--month",
            "2026-10",
            "--format",
            "csv",
            "--timezone",
            "America/New_York",
        ],
    )

    assert result.exit_code == 0, result.output
    rows = {(r["patient_id"], r["code"]): r for r in csv.DictReader(io.StringIO(result.output))}
    assert rows[("p-1001", "99490")]["outcome"] == "earned"
    assert rows[("p-1003", "99484")]["explanation"] == "15 of 20 minutes"


def test_billing_report_refuses_a_malformed_month(database: str) -> None:
    result = runner.invoke(app, ["billing", "report", "--month", "2026-13"])

    assert result.exit_code == 2
    assert "YYYY-MM" in result.output


@pytest.mark.integration
def test_sync_push_once_drains_the_outbox(database: str, fhir_server: LocalFhirServer) -> None:
    result = runner.invoke(app, ["sync", "push", "--once", "--fhir-url", fhir_server.base_url])

    assert result.exit_code == 0, result.output
    assert "pushed 27" in result.output
    assert "dead letters 0" in result.output


@pytest.mark.integration
def test_sync_push_lists_each_dead_letter_with_the_server_reason_and_exits_1(
    database: str, strict_server_factory: StrictServerFactory
) -> None:
    # The strict server refuses references to records it does not have; the EHR's Patients,
    # Practitioners and Conditions were never created there.
    server = strict_server_factory()

    result = runner.invoke(
        app,
        ["sync", "push", "--once", "--fhir-url", server.base_url],
        env={"COLUMNS": "400", "FHIRBRIDGE_FHIR_MAX_RETRIES": "0"},
    )

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    rows = [line for line in result.output.splitlines() if "dead letter" in line]
    assert rows
    enrollment = next(row for row in rows if "en-1001-ccm" in row)
    assert "EpisodeOfCare" in enrollment
    assert "Patient/ehr-88401" in enrollment  # the server's diagnostics name the missing target


def test_export_writes_ndjson_of_the_caseload(database: str, tmp_path: Path) -> None:
    out = tmp_path / "export"

    result = runner.invoke(app, ["export", "--out", str(out)], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "3 patients exported" in result.output
    assert (out / "EpisodeOfCare.ndjson").read_text().count("\n") == 3


@pytest.mark.integration
def test_bulk_export_downloads_from_the_server_named_by_fhir_url(
    database: str, fhir_server: LocalFhirServer, tmp_path: Path
) -> None:
    pushed = runner.invoke(app, ["sync", "push", "--once", "--fhir-url", fhir_server.base_url])
    assert pushed.exit_code == 0, pushed.output
    out = tmp_path / "bulk"

    args = ["--out", str(out), "--fhir-url", fhir_server.base_url, "--type", "EpisodeOfCare"]

    result = runner.invoke(app, ["bulk", "export", *args, "--max-wait", "1"])

    assert result.exit_code == 0, result.output
    assert "EpisodeOfCare" in result.output
    assert any(out.glob("*.ndjson"))


@pytest.mark.integration
def test_sync_pull_after_a_push_records_no_conflict_and_exits_0(
    database: str, fhir_server: LocalFhirServer
) -> None:
    pushed = runner.invoke(app, ["sync", "push", "--once", "--fhir-url", fhir_server.base_url])
    assert pushed.exit_code == 0, pushed.output

    result = runner.invoke(app, ["sync", "pull", "--fhir-url", fhir_server.base_url])

    assert result.exit_code == 0, result.output
    assert "conflicts 0" in result.output


def test_demo_refuses_an_unknown_time_zone_as_a_usage_error() -> None:
    result = runner.invoke(app, ["demo", "--timezone", "Mars/Olympus_Mons"])

    assert result.exit_code == 2
    assert "not an IANA time zone" in result.output
