"""The month-end report of the demo caseload, as reviewed CSV and JSON under
fixtures/billing/reports/, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.billing import load_rule_year
from fhirbridge.billing.report import CSV_COLUMNS, Report, write_csv, write_json
from fhirbridge.caseload import load_caseload
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.services.billing import monthly_report
from tests.billing.billing_db import BACKENDS, billing_database, store_all

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "fixtures" / "billing" / "reports"
RULES = load_rule_year(2026)
CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture(scope="module", params=BACKENDS)
def demo_sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    caseload = load_caseload(ROOT / "fixtures" / "demo" / "caseload.yaml")
    with billing_database(request.param, tmp_path_factory.mktemp("report")) as sessions:
        store_all(sessions, [*caseload.patients, *caseload.members, *caseload.care_records()])
        yield sessions


@pytest.fixture(scope="module")
def report(demo_sessions: sessionmaker[Session]) -> Report:
    with unit_of_work(demo_sessions) as session:
        return monthly_report(Store(session), month=(2026, 10), tz=CHICAGO, rules=RULES)


def test_csv_matches_the_reviewed_file(report: Report) -> None:
    out = io.StringIO()

    write_csv(report, out)

    assert out.getvalue() == (REPORTS / "demo-2026-10.csv").read_text()


def test_json_matches_the_reviewed_file(report: Report) -> None:
    out = io.StringIO()

    write_json(report, out)

    assert json.loads(out.getvalue()) == json.loads((REPORTS / "demo-2026-10.json").read_text())
    assert out.getvalue() == (REPORTS / "demo-2026-10.json").read_text()


def test_csv_columns_come_in_the_documented_order(report: Report) -> None:
    out = io.StringIO()

    write_csv(report, out)

    header = next(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(header) == CSV_COLUMNS


def test_an_earned_code_names_its_units_practitioner_minutes_and_entries(report: Report) -> None:
    (line,) = [line for line in report.earned if line.code == "99490"]

    assert (line.patient_id, line.units, line.practitioner_id, line.minutes, line.entry_ids) == (
        "p-1001",
        1,
        "m-md",
        32,
        ("te-1001-01", "te-1001-02"),
    )


def test_a_code_not_earned_says_why(report: Report) -> None:
    (line,) = [line for line in report.for_patient("p-1003") if line.code == "99484"]

    assert (line.earned, line.explanation) == (False, "15 of 20 minutes")


def test_a_report_for_some_patients_holds_only_their_lines(
    demo_sessions: sessionmaker[Session],
) -> None:
    with unit_of_work(demo_sessions) as session:
        partial = monthly_report(
            Store(session), month=(2026, 10), tz=CHICAGO, rules=RULES, patient_ids=["p-1002"]
        )

    assert {line.patient_id for line in partial.lines} == {"p-1002"}
