"""Benchmark: one care manager's worklist (a caseload of 250) in a practice of 10 000 patients,
on SQLite and on PostgreSQL.

Generates the practice (40 care managers of 250 patients each; per patient one CCM enrollment
with its consent, a few time entries in October 2026 including check-in calls, two care tasks,
a referral, and a sync conflict on every 25th), then times ``build_worklist`` for one care
manager: once mid-month and once near month end (when the billing-threshold check runs the
month's minutes through SQL as well). Prints p50/p95 in ms.

    .venv/bin/python benchmarks/worklist.py [--postgres-url URL] [--patients N] [--repeat N]

Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert

from fhirbridge.billing import load_rule_year
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.mapping.loader import load_mappings
from fhirbridge.persistence import Store, make_engine, make_session_factory
from fhirbridge.persistence.scratch import scratch_database
from fhirbridge.persistence.tables import (
    CareTaskRow,
    CareTeamMemberRow,
    EnrollmentRow,
    PatientLinkRow,
    ProgramConsentRow,
    ReferralRow,
    SyncConflictRow,
    TimeEntryRow,
)
from fhirbridge.services.worklist import WorklistPolicy, build_worklist

TZ = ZoneInfo("America/Chicago")
CASELOAD = 250
MID_MONTH = datetime(2026, 10, 15, 15, 0, tzinfo=UTC)
MONTH_END = datetime(2026, 10, 28, 15, 0, tzinfo=UTC)
RISKS = ("low", "moderate", "high", None)
TASK_STATUSES = ("requested", "accepted", "in-progress", "completed", "cancelled")
PRIORITIES = ("routine", "routine", "routine", "urgent", "asap", None)


def _rows(patients: int, seed: int = 2026) -> dict[Any, list[dict[str, Any]]]:
    rng = random.Random(seed)
    managers = max(1, patients // CASELOAD)
    rows: dict[Any, list[dict[str, Any]]] = {
        CareTeamMemberRow: [
            {"id": f"cm-{n:03d}", "name": f"Care manager {n}", "role": "rn", "team": "bench"}
            for n in range(managers)
        ],
        PatientLinkRow: [],
        EnrollmentRow: [],
        ProgramConsentRow: [],
        TimeEntryRow: [],
        CareTaskRow: [],
        ReferralRow: [],
        SyncConflictRow: [],
    }
    month_start = datetime(2026, 10, 1, tzinfo=TZ).astimezone(UTC)
    for p in range(patients):
        patient_id = f"p{p:05d}"
        manager = f"cm-{p % managers:03d}"
        enrollment_id = f"{patient_id}-ccm"
        rows[PatientLinkRow].append(
            {"id": patient_id, "ehr_reference": f"Patient/ehr-{p}", "team": "bench"}
        )
        rows[EnrollmentRow].append(
            {
                "id": enrollment_id,
                "patient_id": patient_id,
                "program": "CCM",
                "status": "active",
                "start_on": date(2026, 1 + p % 9, 1 + p % 28),
                "conditions": ["Condition/a", "Condition/b"],
                "risk_level": RISKS[p % len(RISKS)],
                "care_manager_id": manager,
            }
        )
        rows[ProgramConsentRow].append(
            {
                "id": f"{enrollment_id}-consent",
                "patient_id": patient_id,
                "enrollment_id": enrollment_id,
                "program": "CCM",
                "status": "active",
                "given_on": date(2026, 1, 1),
                "method": "verbal",
                "recorded_by_id": manager,
            }
        )
        for n in range(6):
            start = month_start + timedelta(minutes=rng.randrange(-40 * 1440, 27 * 1440))
            minutes = rng.randrange(2, 9)
            rows[TimeEntryRow].append(
                {
                    "id": f"{patient_id}-t{n}",
                    "patient_id": patient_id,
                    "enrollment_id": enrollment_id,
                    "program": "CCM",
                    "staff_id": manager,
                    "staff_role": "rn",
                    "activity": "check-in-call" if n % 2 == 0 else "care-coordination",
                    "mode": "virtual",
                    "status": "finished",
                    "started_at": start,
                    "ended_at": start + timedelta(minutes=minutes),
                    "minutes": minutes,
                }
            )
        for n in range(2):
            rows[CareTaskRow].append(
                {
                    "id": f"{patient_id}-task{n}",
                    "patient_id": patient_id,
                    "kind": "check-in-call",
                    "status": rng.choice(TASK_STATUSES),
                    "priority": rng.choice(PRIORITIES),
                    "owner_id": manager if n == 0 else None,
                    "due_end": date(2026, 10, 1) + timedelta(days=rng.randrange(0, 30)),
                }
            )
        rows[ReferralRow].append(
            {
                "id": f"{patient_id}-ref",
                "patient_id": patient_id,
                "kind": "social-need",
                "status": "active",
                "categories": [],
                "authored_at": month_start + timedelta(days=rng.randrange(0, 14)),
                "task_status": rng.choice(("requested", "accepted", "completed")),
                "outcomes": [],
                "outcome_references": [],
            }
        )
        if p % 25 == 0:
            rows[SyncConflictRow].append(
                {
                    "entity_kind": "referral",
                    "local_id": f"{patient_id}-ref",
                    "resource_type": "Task",
                    "reason": "concurrent-edit",
                    "fields": ["priority"],
                    "local": {},
                    "remote": {},
                    "state": "open",
                    "detected_at": month_start,
                }
            )
    return rows


def _load(engine: Engine, rows: dict[Any, list[dict[str, Any]]]) -> None:
    with engine.begin() as connection:
        for row_type, items in rows.items():
            if items:
                connection.execute(insert(row_type), items)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _time(url: str, rows: dict[Any, list[dict[str, Any]]], repeat: int) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        _load(engine, rows)
        loaded = time.perf_counter() - started
        rules = load_rule_year(2026)
        plan = load_mappings(PROJECT_ROOT / "mappings").plan
        sessions = make_session_factory(engine, sync_plan=plan)
        figures: dict[str, Any] = {"load": loaded}
        for label, now in (("mid-month", MID_MONTH), ("month-end", MONTH_END)):
            timings: list[float] = []
            total = 0
            for _ in range(repeat):
                with sessions() as session:
                    started = time.perf_counter()
                    worklist = build_worklist(
                        store=Store(session),
                        staff_id="cm-000",
                        now=now,
                        tz=TZ,
                        policy=WorklistPolicy(),
                        rules=rules,
                        page_size=50,
                    )
                    timings.append((time.perf_counter() - started) * 1000)
                    total = worklist.total
            figures[label] = (timings, total)
        return figures
    finally:
        engine.dispose()


def _databases(postgres_url: str | None, workdir: Path) -> Iterator[tuple[str, Any]]:
    yield "sqlite", scratch_database("sqlite", workdir=workdir)
    if postgres_url:
        yield (
            "postgresql",
            scratch_database("postgresql", workdir=workdir, postgres_url=postgres_url),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url", help="e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20, help="worklists timed per case")
    args = parser.parse_args()
    rows = _rows(args.patients)
    print(
        f"{args.patients} patients, caseload {CASELOAD}, "
        f"{len(rows[TimeEntryRow])} time entries, {len(rows[CareTaskRow])} tasks"
    )
    with tempfile.TemporaryDirectory() as workdir:
        for backend, database in _databases(args.postgres_url, Path(workdir)):
            with database as url:
                figures = _time(url, rows, max(args.repeat, 1))
            print(f"{backend:>10}: bulk load {figures['load']:6.2f} s")
            for label in ("mid-month", "month-end"):
                timings, total = figures[label]
                print(
                    f"{'':>10}  {label:>9}: p50 {statistics.median(timings):7.1f} ms, "
                    f"p95 {_percentile(timings, 0.95):7.1f} ms ({total} items)"
                )


if __name__ == "__main__":
    main()
