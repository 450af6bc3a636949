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
from fhirbridge.mapping.loader import load_mappings
from fhirbridge.persistence import Store, make_engine, make_session_factory, unit_of_work
from fhirbridge.services.caseload import store_caseload

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FHIRBRIDGE_DATABASE_URL", url)
    monkeypatch.setenv("FHIRBRIDGE_IDENTIFIER_SYSTEM", f"urn:fhirbridge:cli-{tmp_path.name}")
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine)) as session:
        store_caseload(
            store=Store(session),
            caseload=load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"),
            mappings=load_mappings(PROJECT_ROOT / "mappings"),
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
