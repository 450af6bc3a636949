"""Benchmark: RPM device readings ingested, then a month's device days rolled up, on SQLite and
on PostgreSQL (issue 11).

Generates 10 000 RPM patients (enrollment, consent, billing practitioner), each with 30 days of
readings, 3 a day (900 000 Observations, blood pressure, weight and heart rate), their 30-day
period ending in October 2026. By default the Observations are ingested as a device hub posts
them, the real NDJSON path: a body of 100 patients' readings (9 000 lines) through
``services.monitoring.ingest_observations`` (parse, resolve the patient, fix the day in the
practice time zone, upsert by source identifier with the per-line report), one transaction per
body; the ingest rate printed times that path and the commit, not the writing of the bodies. Then
the month's RPM lines (``services.monitoring_billing.rpm_device_days``: days counted per period
in SQL, judged in Python) are timed, and timed again under ``tracemalloc`` for the roll-up's
peak Python memory. Targets: roll-up under 5 s per backend; peak memory flat in the number of
readings, which ``--readings-per-day 1 3`` shows (same patients, three times the readings).

    .venv/bin/python benchmarks/rpm_rollup.py [--postgres-url URL] [--patients N]
        [--readings-per-day 1 3] [--direct | --bulk] [--chunk N]

``--direct`` stores readings with the repository's batch insert instead of the JSON path;
``--bulk`` writes them with COPY (PostgreSQL) or executemany (SQLite) and measures no ingest,
the quick way to the roll-up figures at full size. Without ``--postgres-url`` only SQLite is
measured. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, insert  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from fhirbridge.billing import load_rule_year  # noqa: E402
from fhirbridge.collector import settle_after_startup  # noqa: E402
from fhirbridge.config import PROJECT_ROOT  # noqa: E402
from fhirbridge.domain import DeviceReading  # noqa: E402
from fhirbridge.domain.observation import reading_id  # noqa: E402
from fhirbridge.mapping.readings import load_reading_rules, reading_to_observation  # noqa: E402
from fhirbridge.persistence import Store, make_engine  # noqa: E402
from fhirbridge.persistence.scratch import Backend, scratch_database  # noqa: E402
from fhirbridge.persistence.tables import (  # noqa: E402
    CareTeamMemberRow,
    EnrollmentRow,
    PatientLinkRow,
    ProgramConsentRow,
)
from fhirbridge.services.monitoring import (  # noqa: E402
    ReadingSource,
    ingest_observations,
    ndjson_lines,
)
from fhirbridge.services.monitoring_billing import rpm_device_days  # noqa: E402

MONTH = (2026, 10)
TZ = ZoneInfo("America/Chicago")
DAYS = 30
PATIENTS_PER_BATCH = 100
HUB = "urn:bench:device-hub"
# (LOINC, value, second value, unit): blood pressure, weight, heart rate in turn.
KINDS = (
    ("85354-9", Decimal(128), Decimal(82), "mm[Hg]"),
    ("29463-7", Decimal("81.5"), None, "kg"),
    ("8867-4", Decimal(72), None, "/min"),
)


def _people(patients: int) -> dict[Any, list[dict[str, Any]]]:
    staff = [
        {"id": f"dr-{n}", "name": f"dr {n}", "role": "physician", "team": "bench"}
        for n in range(20)
    ]
    rows: dict[Any, list[dict[str, Any]]] = {
        CareTeamMemberRow: staff,
        PatientLinkRow: [],
        EnrollmentRow: [],
        ProgramConsentRow: [],
    }
    for p in range(patients):
        patient_id = f"p{p:05d}"
        start = _first_day(p)
        rows[PatientLinkRow].append(
            {"id": patient_id, "ehr_reference": f"Patient/ehr-{p}", "team": "bench"}
        )
        rows[EnrollmentRow].append(
            {
                "id": f"{patient_id}-rpm",
                "patient_id": patient_id,
                "program": "RPM",
                "status": "active",
                "start_on": start,
                "end_on": None,
                "conditions": [],
                "risk_level": None,
                "care_manager_id": None,
                "billing_practitioner_id": f"dr-{p % 20}",
            }
        )
        rows[ProgramConsentRow].append(
            {
                "id": f"{patient_id}-consent",
                "patient_id": patient_id,
                "enrollment_id": f"{patient_id}-rpm",
                "program": "RPM",
                "status": "active",
                "given_on": start,
                "method": "verbal",
                "recorded_by_id": "dr-0",
                "scope": None,
            }
        )
    return rows


def _first_day(patient: int) -> date:
    # Periods of 30 days starting on October 1 or 2 end on October 30 or 31.
    return date(MONTH[0], MONTH[1], 1 + patient % 2)


def _readings(first: int, count: int, per_day: int) -> Iterator[DeviceReading]:
    for p in range(first, first + count):
        start = _first_day(p)
        for d in range(DAYS):
            day = start + timedelta(days=d)
            for n in range(per_day):
                code, value, second, unit = KINDS[n % len(KINDS)]
                local = datetime(day.year, day.month, day.day, 7 + 5 * n, 15, tzinfo=TZ)
                source_value = f"p{p}-{day.isoformat()}-{n}"
                yield DeviceReading(
                    id=reading_id(HUB, source_value),
                    patient_id=f"p{p:05d}",
                    code=code,
                    effective_at=local.astimezone(UTC),
                    day=day,
                    value=value,
                    second_value=second,
                    unit=unit,
                    device=f"Device/hub-{p}",
                    source_system=HUB,
                    source_value=source_value,
                )


def _load_people(engine: Engine, rows: dict[Any, list[dict[str, Any]]]) -> None:
    with engine.begin() as connection:
        for row_type, items in rows.items():
            for start in range(0, len(items), 5_000):
                connection.execute(insert(row_type), items[start : start + 5_000])


def _bulk_load(url: str, patients: int, per_day: int) -> tuple[int, float]:
    """Readings written straight into the table, for the roll-up at full size on a busy
    machine: PostgreSQL's COPY, SQLite's executemany, rows streamed from a generator."""
    columns = (
        "id, patient_id, code, effective_at, day, value, second_value, unit, device, manual, "
        "source_system, source_value"
    )
    engine = make_engine(url)
    started = time.perf_counter()
    stored = 0
    try:
        with engine.begin() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            if engine.dialect.name == "postgresql":
                statement = f"COPY device_readings ({columns}) FROM STDIN"
                with raw.cursor() as cursor, cursor.copy(statement) as copy:
                    for r in _readings(0, patients, per_day):
                        copy.write_row(
                            (
                                r.id, r.patient_id, r.code, r.effective_at, r.day, r.value,
                                r.second_value, r.unit, r.device, r.manual, r.source_system,
                                r.source_value,
                            )
                        )  # fmt: skip
                        stored += 1
            else:
                rows = (
                    (
                        r.id, r.patient_id, r.code,
                        r.effective_at.astimezone(UTC).replace(tzinfo=None).isoformat(" "),
                        r.day.isoformat(), float(r.value or 0),
                        None if r.second_value is None else float(r.second_value), r.unit,
                        r.device, 0, r.source_system, r.source_value,
                    )
                    for r in _readings(0, patients, per_day)
                )  # fmt: skip
                cursor = raw.cursor()
                cursor.executemany(
                    f"INSERT INTO device_readings ({columns}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                stored = patients * DAYS * per_day
        return stored, time.perf_counter() - started
    finally:
        engine.dispose()


def _ingest(
    url: str, patients: int, per_day: int, *, direct: bool, chunk: int
) -> tuple[int, float]:
    """Readings stored and the seconds their ingest took: the hub's NDJSON body is written
    before the clock starts; parsing, mapping, patient look-up, the upserts and the commit
    are timed."""
    engine = make_engine(url)
    # Readings sync as nothing: their session needs no sync plan (mapping files).
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    rules = load_reading_rules(PROJECT_ROOT / "mappings")
    stored = 0
    seconds = 0.0
    try:
        for first in range(0, patients, PATIENTS_PER_BATCH):
            count = min(PATIENTS_PER_BATCH, patients - first)
            readings = _readings(first, count, per_day)
            if direct:
                batch = list(readings)
                started = time.perf_counter()
                with sessions.begin() as session:
                    Store(session).device_readings.ingest(batch, report=False, chunk=chunk)
                seconds += time.perf_counter() - started
                stored += len(batch)
                continue
            body = "\n".join(
                json.dumps(
                    reading_to_observation(
                        r, rules, patient_reference=f"Patient/ehr-{int(r.patient_id[1:])}"
                    ),
                    default=str,
                )
                for r in readings
            ).encode()
            started = time.perf_counter()
            with sessions.begin() as session:
                report = ingest_observations(
                    Store(session),
                    ndjson_lines(body),
                    rules=rules,
                    zone=TZ,
                    source=ReadingSource(),
                    chunk=chunk,
                )
            seconds += time.perf_counter() - started
            if report.refused:
                raise SystemExit(f"refused: {report.refused[:3]}")
            stored += report.stored
        return stored, seconds
    finally:
        engine.dispose()


def _roll_up(url: str, repeat: int) -> tuple[list[tuple[float, float]], int, int, float]:
    """(wall, client CPU) times, lines, codes earned, and the peak Python memory (MiB) of one
    roll-up."""
    engine = make_engine(url)
    rules = load_rule_year(MONTH[0])
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    settle_after_startup()  # as `fhirbridge serve` does
    try:
        walls: list[tuple[float, float]] = []
        for _ in range(repeat):
            with sessions() as session:
                started, cpu = time.perf_counter(), time.process_time()
                month = rpm_device_days(
                    Store(session), month=MONTH, tz=TZ, rules=rules, patient_ids=None, billed={}
                )
                walls.append((time.perf_counter() - started, time.process_time() - cpu))
        with sessions() as session:
            tracemalloc.start()
            rpm_device_days(
                Store(session), month=MONTH, tz=TZ, rules=rules, patient_ids=None, billed={}
            )
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        earned = sum(1 for line in month.lines if line.earned)
        return walls, len(month.lines), earned, peak / 2**20
    finally:
        gc.unfreeze()
        engine.dispose()


def _analyze(url: str) -> None:
    """Planner statistics, as autovacuum (PostgreSQL) or a maintenance job would gather."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def _backends(postgres_url: str | None) -> list[Backend]:
    return ["sqlite", "postgresql"] if postgres_url else ["sqlite"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url", help="e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--readings-per-day", type=int, nargs="+", default=[3])
    parser.add_argument("--repeat", type=int, default=3, help="roll-ups timed per run")
    parser.add_argument("--direct", action="store_true", help="skip the Observation JSON path")
    parser.add_argument(
        "--bulk", action="store_true", help="write readings with COPY / executemany (no ingest)"
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=5_000,
        help="readings per chunk (one SELECT, a few multi-row upserts): ingest_observations' "
        "and the repository's default",
    )
    args = parser.parse_args()
    people = _people(args.patients)
    label = (
        "bulk COPY / executemany (roll-up figures only)"
        if args.bulk
        else "repository batch insert"
        if args.direct
        else "NDJSON Observations"
    )
    print(
        f"{args.patients} RPM patients x {DAYS} days, month {MONTH[0]}-{MONTH[1]:02d} "
        f"({TZ.key}); readings ingested as {label}"
    )
    with tempfile.TemporaryDirectory() as workdir:
        for backend in _backends(args.postgres_url):
            for per_day in args.readings_per_day:
                database = scratch_database(
                    backend, workdir=Path(workdir), postgres_url=args.postgres_url
                )
                with database as url:
                    engine = make_engine(url)
                    _load_people(engine, people)
                    engine.dispose()
                    if args.bulk:
                        stored, seconds = _bulk_load(url, args.patients, per_day)
                    else:
                        stored, seconds = _ingest(
                            url, args.patients, per_day, direct=args.direct, chunk=args.chunk
                        )
                    _analyze(url)
                    walls, lines, earned, peak = _roll_up(url, max(args.repeat, 1))
                best, median = min(w for w, _ in walls), statistics.median(w for w, _ in walls)
                # CPU time of this process: all of SQLite's work (it runs in-process), only the
                # client's for PostgreSQL; steadier than wall time on a busy machine.
                cpu = min(c for _, c in walls)
                verdict = "ok" if best < 5.0 else "OVER the 5 s target"
                print(
                    f"{backend:>10}, {per_day}/day: ingest {stored} readings in {seconds:6.1f} s "
                    f"({stored / seconds:8.0f} readings/s) | roll-up best {best:6.3f} s, median "
                    f"{median:6.3f} s of {len(walls)}, client CPU {cpu:6.3f} s ({lines} lines, "
                    f"{earned} earned) {verdict} "
                    f"| roll-up peak Python memory {peak:6.1f} MiB",
                    flush=True,
                )


if __name__ == "__main__":
    main()
