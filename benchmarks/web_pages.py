"""Benchmark: the web app's pages for one care manager (a caseload of 250) in a practice of
10 000 patients, on SQLite and on PostgreSQL; the target is 200 ms at p95 per page.

Seeds the practice of ``benchmarks/worklist.py`` (same generator), signs a care manager in
with a session cookie (``fhirbridge.web.session.issue_session_cookie``) and times whole
requests through the app in process (routing, session, unit of work, services, templates):
the worklist, the billing thresholds near month end, patient pages of the caseload, and the
team's month-end report for a billing user. Prints p50/p95 in ms per page.

    .venv/bin/python benchmarks/web_pages.py [--postgres-url URL] [--patients N] [--repeat N]

Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from worklist import (
    CASELOAD,
    MONTH_END,
    CareTeamMemberRow,
    PatientLinkRow,
    TimeEntryRow,
    _databases,
    _load,
    _percentile,
    _rows,
)

from fhirbridge.api import create_app
from fhirbridge.api.auth import Principal, Role
from fhirbridge.collector import settle_after_startup
from fhirbridge.config import Settings
from fhirbridge.persistence import make_engine
from fhirbridge.web.session import issue_session_cookie

TARGET_MS = 200.0
CARE_MANAGER = Principal("user:cm-000", frozenset({Role.CARE_MANAGER}), "team-000", "cm-000")
# Month end is a team's report: the care manager's team, a caseload, not the practice.
BILLING = Principal("user:billing", frozenset({Role.BILLING}), "team-000")


def _timed(client: TestClient, path: str, repeat: int) -> list[float]:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
    return timings


def _client(settings: Settings, now: datetime, principal: Principal) -> TestClient:
    client = TestClient(create_app(settings, clock=lambda: now), follow_redirects=False)
    # As `fhirbridge serve` does (cli.api_from_environment): what start-up built is kept out of
    # the collector's sight, so a full collection does not rescan it during a request.
    settle_after_startup()
    name, value = issue_session_cookie(settings, principal)
    client.cookies.set(name, value)
    return client


def _pages(url: str, patients: int, repeat: int) -> dict[str, list[float]]:
    settings = Settings(database_url=url, practice_timezone="America/Chicago")
    managers = max(1, patients // CASELOAD)
    figures: dict[str, list[float]] = {}
    cases: list[tuple[str, Principal, Callable[[int], str]]] = [
        ("worklist", CARE_MANAGER, lambda _: "/app/worklist"),
        ("thresholds", CARE_MANAGER, lambda _: "/app/thresholds"),
        # cm-000's caseload: the generator deals patients to care managers round-robin.
        ("patient", CARE_MANAGER, lambda n: f"/app/patients/p{(n * managers) % patients:05d}"),
        ("month-end", BILLING, lambda _: "/app/month-end?month=2026-10"),
    ]
    for label, principal, path in cases:
        with _client(settings, MONTH_END, principal) as client:
            client.get(path(0))  # warm-up: templates compiled, rules loaded
            timings: list[float] = []
            for n in range(repeat):
                timings += _timed(client, path(n), 1)
            figures[label] = timings
    return figures


def _one_team_per_caseload(rows: dict[Any, list[dict[str, Any]]], patients: int) -> None:
    """The worklist generator puts the whole practice in one team; here each care manager is a
    team of their own with their caseload (patients are dealt to managers round-robin)."""
    managers = max(1, patients // CASELOAD)
    for member in rows[CareTeamMemberRow]:
        member["team"] = "team-" + member["id"].removeprefix("cm-")
    for patient in rows[PatientLinkRow]:
        number = int(patient["id"].removeprefix("p"))
        patient["team"] = f"team-{number % managers:03d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url", help="e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20, help="requests timed per page")
    args = parser.parse_args()
    rows = _rows(args.patients)
    _one_team_per_caseload(rows, args.patients)
    print(f"{args.patients} patients, caseload {CASELOAD}, {len(rows[TimeEntryRow])} time entries")
    with tempfile.TemporaryDirectory() as workdir:
        for backend, database in _databases(args.postgres_url, Path(workdir)):
            with database as url:
                engine = make_engine(url)
                try:
                    _load(engine, rows)
                finally:
                    engine.dispose()
                figures = _pages(url, args.patients, max(args.repeat, 1))
            print(f"{backend:>10}:")
            for label, timings in figures.items():
                p95 = _percentile(timings, 0.95)
                verdict = "ok" if p95 <= TARGET_MS else f"over {TARGET_MS:.0f} ms"
                print(
                    f"{'':>10}  {label:>10}: p50 {statistics.median(timings):7.1f} ms, "
                    f"p95 {p95:7.1f} ms  {verdict}"
                )


if __name__ == "__main__":
    main()
