"""Benchmark: the month roll-up of a whole practice, on SQLite and on PostgreSQL.

Generates 10 000 patients with one program enrollment and its consent each, and 20 time entries
a patient in October 2026 (some running over the month's edges), then times
``practice_month`` (SQL pre-aggregation plus the summary roll-up of every patient) and the
month-end report built from it. Target: under 2 s per backend. The collector is set as
``fhirbridge billing report`` sets it (start-up frozen out of its sight, fewer young passes);
``--as-serve`` as ``fhirbridge serve`` does (frozen only), ``--no-freeze`` neither.

    .venv/bin/python benchmarks/billing_rollup.py [--postgres-url URL] [--patients N]

Without ``--postgres-url`` only SQLite is measured. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
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
from fhirbridge.billing.aggregate import PracticeMonth
from fhirbridge.billing.report import Report, build_report, write_csv
from fhirbridge.collector import ROLL_UP_YOUNG_THRESHOLD, settle_after_startup
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.mapping.loader import load_mappings
from fhirbridge.persistence import Store, make_engine, make_session_factory
from fhirbridge.persistence.scratch import scratch_database
from fhirbridge.persistence.tables import (
    CareTeamMemberRow,
    EnrollmentRow,
    PatientLinkRow,
    ProgramConsentRow,
    TimeEntryRow,
)
from fhirbridge.services.billing import practice_month

MONTH = (2026, 10)
TZ = ZoneInfo("America/Chicago")
ENTRIES_PER_PATIENT = 20
PROGRAMS = (
    ("CCM", "rn"),
    ("CCM", "rn"),
    ("CCM", "physician"),
    ("PCM", "physician"),
    ("BHI", "lcsw"),
)


def _rows(patients: int, seed: int = 2026) -> dict[Any, list[dict[str, Any]]]:
    rng = random.Random(seed)
    staff = [
        {"id": f"m-{role}-{n}", "name": f"{role} {n}", "role": role, "team": "bench"}
        for role in ("rn", "physician", "lcsw")
        for n in range(20)
    ]
    rows: dict[Any, list[dict[str, Any]]] = {
        CareTeamMemberRow: staff,
        PatientLinkRow: [],
        EnrollmentRow: [],
        ProgramConsentRow: [],
        TimeEntryRow: [],
    }
    month_start = datetime(2026, 10, 1, tzinfo=TZ).astimezone(UTC)
    for p in range(patients):
        patient_id = f"p{p:05d}"
        program, role = PROGRAMS[p % len(PROGRAMS)]
        enrollment_id = f"{patient_id}-{program}"
        rows[PatientLinkRow].append(
            {"id": patient_id, "ehr_reference": f"Patient/ehr-{p}", "team": "bench"}
        )
        rows[EnrollmentRow].append(
            {
                "id": enrollment_id,
                "patient_id": patient_id,
                "program": program,
                "status": "active",
                "start_on": date(2026, 1 + p % 12, 1 + p % 28),
                "conditions": ["Condition/a", "Condition/b"],
                "billing_practitioner_id": f"m-physician-{p % 20}",
            }
        )
        rows[ProgramConsentRow].append(
            {
                "id": f"{enrollment_id}-consent",
                "patient_id": patient_id,
                "enrollment_id": enrollment_id,
                "program": program,
                "status": "active",
                "given_on": date(2026, 1 + p % 12, 1 + p % 28),
                "method": "verbal",
                "recorded_by_id": f"m-rn-{p % 20}",
            }
        )
        for n in range(ENTRIES_PER_PATIENT):
            # Spread over the month and a day either side, so some entries cross its edges.
            start = month_start + timedelta(minutes=rng.randrange(-1440, 33 * 1440))
            minutes = rng.randrange(1, 12)
            rows[TimeEntryRow].append(
                {
                    "id": f"{patient_id}-t{n:02d}",
                    "patient_id": patient_id,
                    "enrollment_id": enrollment_id,
                    "program": program,
                    # Mostly the patient's care manager; now and then a colleague covers.
                    "staff_id": f"m-{role}-{p % 20 if rng.random() < 0.9 else rng.randrange(20)}",
                    "staff_role": role,
                    "activity": "check-in-call",
                    "mode": "virtual",
                    "status": "finished" if rng.random() > 0.03 else "entered-in-error",
                    "started_at": start,
                    "ended_at": start + timedelta(minutes=minutes),
                    "minutes": minutes,
                    "interactive": rng.random() > 0.5,
                }
            )
    return rows


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, list):
        return "[" + ",".join(f'"{item}"' for item in value) + "]"
    return str(value)


def _load(engine: Engine, rows: dict[Any, list[dict[str, Any]]]) -> None:
    with engine.begin() as connection:
        for row_type, items in rows.items():
            if engine.dialect.name != "postgresql":
                connection.execute(insert(row_type), items)
                continue
            # COPY is PostgreSQL's bulk path: one round trip for all rows of a table.
            columns = list(items[0])
            buffer = io.StringIO()
            for item in items:
                buffer.write("\t".join(_copy_value(item.get(c)) for c in columns) + "\n")
            raw = connection.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cursor:
                statement = f"COPY {row_type.__tablename__} ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(statement) as copy:
                    copy.write(buffer.getvalue())


def _time(
    url: str,
    rows: dict[Any, list[dict[str, Any]]],
    repeat: int,
    *,
    freeze: bool = True,
    as_serve: bool = False,
) -> tuple[float, list[tuple[float, float]], int, Report]:
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        _load(engine, rows)
        loaded = time.perf_counter() - started
        rules = load_rule_year(MONTH[0])
        plan = load_mappings(PROJECT_ROOT / "mappings").plan
        sessions = make_session_factory(engine, sync_plan=plan)
        # As `fhirbridge billing report` does (or, with --as-serve, `fhirbridge serve`, whose
        # web app and API answer the report too): what start-up built (and this benchmark's
        # generated rows) is kept out of the collector's sight.
        if freeze:
            settle_after_startup(young_threshold=None if as_serve else ROLL_UP_YOUNG_THRESHOLD)
        timings = []
        practice: PracticeMonth | None = None
        report: Report | None = None
        for _ in range(repeat):
            # As between two requests of a server: the last roll-up's result is gone before
            # the next starts, so the collector does not scan it again on the next one's time.
            practice = report = None
            with sessions() as session:
                started, cpu = time.perf_counter(), time.process_time()
                practice = practice_month(Store(session), rules=rules, month=MONTH, tz=TZ)
                report = build_report(practice, rules=rules, time_zone=TZ.key)
                timings.append((time.perf_counter() - started, time.process_time() - cpu))
        assert practice is not None
        assert report is not None
        return loaded, timings, len(practice.results), report
    finally:
        gc.unfreeze()
        engine.dispose()


def _digest(report: Report) -> str:
    # The whole report as written: a change of content or order shows as another digest.
    out = io.StringIO()
    write_csv(report, out)
    return hashlib.sha256(out.getvalue().encode()).hexdigest()


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
    parser.add_argument("--repeat", type=int, default=3, help="roll-ups timed per backend")
    parser.add_argument("--as-serve", action="store_true", help="the collector as `serve` sets it")
    parser.add_argument(
        "--no-freeze", action="store_true", help="leave start-up in the collector's sight"
    )
    args = parser.parse_args()
    rows = _rows(args.patients)
    entries = len(rows[TimeEntryRow])
    month = f"{MONTH[0]}-{MONTH[1]:02d}"
    print(f"{args.patients} patients, {entries} time entries, month {month} ({TZ.key})")
    with tempfile.TemporaryDirectory() as workdir:
        for backend, database in _databases(args.postgres_url, Path(workdir)):
            with database as url:
                loaded, timings, patients, report = _time(
                    url,
                    rows,
                    max(args.repeat, 1),
                    freeze=not args.no_freeze,
                    as_serve=args.as_serve,
                )
            earned = len(report.earned)
            walls = [wall for wall, _ in timings]
            best, median = min(walls), statistics.median(walls)
            # CPU time of this process (SQLite runs in it; PostgreSQL's server does not): a
            # steadier figure than wall time on a busy machine.
            cpus = [cpu for _, cpu in timings]
            cpu, cpu_median = min(cpus), statistics.median(cpus)
            verdict = "ok" if best < 2.0 else "OVER the 2 s target"
            print(
                f"{backend:>10}: bulk load {loaded:6.2f} s | month roll-up best {best:6.3f} s, "
                f"median {median:6.3f} s of {len(timings)}, client CPU best {cpu:6.3f} s, "
                f"median {cpu_median:6.3f} s "
                f"({patients} patients, {earned} codes earned) {verdict}"
            )
            print(f"{'':>10}  report CSV sha256 {_digest(report)}")


if __name__ == "__main__":
    main()
