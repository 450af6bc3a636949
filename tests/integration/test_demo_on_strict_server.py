"""The demo on a FHIR server stricter than sekmet: opaque (UUID) version ids, at most 8 entries
per transaction with conditional entries, references that must resolve (HAPI's default). The
demo plays the EHR first, so the month's work completes: every record pushed, the food
referral's loop closed, the charges pushed, no dead letters. Its newer programs too: the EHR's
discharge Encounter points at a Patient the EHR side created, the PHQ-9's Observations at their
QuestionnaireResponse."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from fhirbridge import wiring
from fhirbridge.cli import app
from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.services.demo import DemoReport
from tests.servers.fixtures import StrictServerFactory

pytestmark = pytest.mark.integration
DEMO = PROJECT_ROOT / "fixtures" / "demo"


def _demo(tmp_path: Path, base_url: str) -> DemoReport:
    settings = Settings(
        identifier_system=f"urn:fhirbridge:strict-demo-{tmp_path.name}",
        practice_timezone="America/New_York",
    )

    async def go() -> DemoReport:
        return await wiring.demo(
            settings,
            base_url=base_url,
            database_url=f"sqlite:///{tmp_path / 'demo.db'}",
            caseload_path=DEMO / "caseload.yaml",
            ehr_dir=DEMO / "ehr",
            month=(2026, 10),
            programs_dir=DEMO / "programs",
        )

    return anyio.run(go)


def test_demo_on_a_strict_server_completes_the_month_without_dead_letters(
    tmp_path: Path, strict_server_factory: StrictServerFactory
) -> None:
    server = strict_server_factory()

    report = _demo(tmp_path, server.base_url)

    assert [entry.target for entry in report.dead_letters] == []
    assert report.conflicts == []
    assert report.skipped == []
    assert report.outbox.get("pending", 0) + report.outbox.get("in_flight", 0) == 0
    assert (report.ehr.present, report.ehr.missing) == ([], [])  # a fresh server: all created
    assert report.referral is not None
    assert (report.referral.task_status.value, report.referral.status.value) == (
        "completed",
        "completed",
    )
    assert report.charges is not None
    assert len(report.charges.created) == 6  # 99490, 99424, 99457, 99453, 99454, 99496
    assert report.resources_by_type["ChargeItem"] == 6
    assert report.resources_by_type["QuestionnaireResponse"] == 1
    assert report.tcm is not None
    assert report.tcm.judgement is not None
    assert report.tcm.judgement.earned is not None


def test_demo_command_on_a_strict_server_exits_0(
    tmp_path: Path, strict_server_factory: StrictServerFactory
) -> None:
    server = strict_server_factory()

    result = CliRunner().invoke(
        app,
        ["demo", "--fhir-url", server.base_url],
        env={"FHIRBRIDGE_IDENTIFIER_SYSTEM": f"urn:fhirbridge:strict-cli-{tmp_path.name}"},
    )

    assert result.exit_code == 0, result.output
    assert "0 dead letters" in result.output
    assert "order now completed" in result.output


def test_demo_without_the_ehr_side_lists_what_was_left_undone_and_exits_1(
    tmp_path: Path, strict_server_factory: StrictServerFactory
) -> None:
    server = strict_server_factory()
    no_ehr = tmp_path / "no-ehr"
    no_ehr.mkdir()

    result = CliRunner().invoke(
        app,
        ["demo", "--fhir-url", server.base_url, "--ehr", str(no_ehr)],
        env={
            "FHIRBRIDGE_IDENTIFIER_SYSTEM": f"urn:fhirbridge:strict-no-ehr-{tmp_path.name}",
            "COLUMNS": "400",
        },
    )

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "no fixture for Organization/cbo-foodbank-7" in result.output
    assert any("dead letter" in line and "not found" in line for line in result.output.splitlines())
    assert "not done: referral r-1001-food was not pushed" in result.output
