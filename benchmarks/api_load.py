"""Benchmark: the REST API under a closed loop of care managers, against a bare reference app.

    .venv/bin/python benchmarks/api_load.py [--backends sqlite,postgresql] [--clients 10,50]
        [--seconds 20] [--warmup 2] [--workers 1] [--patients 200] [--postgres-url URL]
        [--json FILE] [--logs DIR] [--profile DIR [--profile-gil]] [--no-access-log]

For each backend, two servers run side by side, each uvicorn in a child process on a free
loopback port with the same options (``--workers``, access log as ``fhirbridge serve``):

- fhirbridge: ``cli.api_from_environment()``, as ``fhirbridge serve`` runs it, over a migrated
  scratch database holding a caseload (``--patients`` patients across one care manager per
  client, each with an active CCM enrollment and its consent), bearer tokens verified against
  a JWKS file made for the run;
- reference: a bare FastAPI app (``reference_app`` below) that verifies the same tokens with
  PyJWT against the same JWKS, inserts one row into a table shaped like ``time_entries`` with
  SQLAlchemy Core in one transaction, and answers the two reads with one SELECT each. On SQLite
  its database has the same journal (WAL) and ``synchronous`` setting as fhirbridge's.

Then, for each client count, N clients (asyncio + httpx, one connection each, one token per
care manager) loop for ``--seconds``: 80 % ``POST /time-entries`` (the client's own staff member,
2-minute entries 3 minutes apart in the previous month, so every one is accepted; each with an
Idempotency-Key), 10 % ``GET /worklist``, 10 % ``GET /patients/{id}/time-entries``. Answers
during the first ``--warmup`` seconds are not counted. Any answer other than 201/200, and any
transport error, is an error, listed by route and status.

Prints req/s (successful answers per second), p50/p95/p99 per route, errors, the CPU each
server and the load generator used (and each server's CPU per answered request, which a loaded
machine changes far less than req/s), fhirbridge's throughput as a share of the reference's, and
a summary table. ``--profile`` records fhirbridge's server with py-spy during each load. The
load generator shares the machine with both servers: on two cores its own CPU caps what either
server can be shown to do.

Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt import PyJWK, PyJWKSet
from jwt.algorithms import RSAAlgorithm
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.engine import make_url

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import (
    CareTeamMember,
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    PatientLink,
    Program,
    ProgramConsent,
    StaffRole,
)
from fhirbridge.mapping.loader import load_mappings
from fhirbridge.persistence import Store, make_engine, make_session_factory, unit_of_work
from fhirbridge.persistence.scratch import (
    Backend,
    check_postgres,
    postgres_schema,
    scratch_database,
)

BENCHMARKS = Path(__file__).resolve().parent
AUDIENCE = "fhirbridge-bench"
ISSUER = "https://idp.bench.invalid"
KEY_ID = "bench-rsa"
TEAM = "bench"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# The reference app's configuration travels to its uvicorn child in these variables;
# fhirbridge's in its own FHIRBRIDGE_* ones.
REFERENCE_DATABASE_URL = "API_LOAD_REFERENCE_DATABASE_URL"
REFERENCE_JWKS_PATH = "API_LOAD_REFERENCE_JWKS_PATH"

POST_ENTRY = "POST /time-entries"
GET_WORKLIST = "GET /worklist"
GET_ENTRIES = "GET /patients/{id}/time-entries"
ROUTES = (POST_ENTRY, GET_WORKLIST, GET_ENTRIES)
ENTRY_LENGTH = timedelta(minutes=2)
ENTRY_STEP = timedelta(minutes=3)
PAGE_SIZE = 50


# -- the reference app (runs in its own uvicorn process) ---------------------------------------

REFERENCE_ENTRIES = Table(
    "time_entries",
    MetaData(),
    Column("id", String(64), primary_key=True),
    Column("patient_id", String(64)),
    Column("enrollment_id", String(64)),
    Column("program", String(32)),
    Column("staff_id", String(64)),
    Column("staff_role", String(32)),
    Column("activity", String(32)),
    Column("mode", String(32)),
    Column("status", String(32), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("minutes", Integer),
    Column("interactive", Boolean),
    Column("notes", Text),
    Index("ix_ref_time_entries_staff_id_started_at", "staff_id", "started_at"),
    Index("ix_ref_time_entries_patient_id_started_at", "patient_id", "started_at"),
)


class ReferenceEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field(min_length=1, max_length=64)
    program: str = Field(min_length=1, max_length=32)
    activity: str = Field(min_length=1, max_length=32)
    mode: str = Field(min_length=1, max_length=32)
    start: AwareDatetime
    end: AwareDatetime
    interactive: bool | None = None
    notes: str | None = Field(default=None, max_length=2000)


_bearer = HTTPBearer(auto_error=False)


def reference_claims(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> dict[str, Any]:
    """The same checks fhirbridge makes on a bearer token: known key, its algorithm, audience,
    issuer, expiry, required claims."""
    if credentials is None:
        raise HTTPException(401, "no credentials")
    keys: dict[str | None, PyJWK] = request.app.state.keys
    try:
        header = jwt.get_unverified_header(credentials.credentials)
        key = keys.get(header.get("kid"))
        if key is None or key.algorithm_name != header.get("alg"):
            raise HTTPException(401, "unknown key")
        claims: dict[str, Any] = jwt.decode(
            credentials.credentials,
            key.key,
            algorithms=[key.algorithm_name],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=30,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.PyJWTError as error:
        raise HTTPException(401, "invalid token") from error
    if not isinstance(claims.get("staff_id"), str):
        raise HTTPException(403, "no staff member")
    return claims


ReferenceClaims = Annotated[dict[str, Any], Depends(reference_claims)]


def _rows(found: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in found.mappings()]


def reference_app() -> FastAPI:
    """uvicorn factory: the minimal app fhirbridge is compared with."""
    engine = create_engine(os.environ[REFERENCE_DATABASE_URL], hide_parameters=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_synchronous_normal)
    jwks = Path(os.environ[REFERENCE_JWKS_PATH]).read_text(encoding="utf-8")
    entries = REFERENCE_ENTRIES.c

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="reference", lifespan=lifespan)
    app.state.keys = {key.key_id: key for key in PyJWKSet.from_json(jwks)}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/time-entries", status_code=201)
    def create_entry(body: ReferenceEntryIn, claims: ReferenceClaims) -> dict[str, Any]:
        if body.end <= body.start:
            raise HTTPException(422, "end before start")
        row = {
            "id": uuid.uuid4().hex,
            "patient_id": body.patient_id,
            "enrollment_id": f"{body.patient_id}-{body.program.lower()}",
            "program": body.program,
            "staff_id": claims["staff_id"],
            "staff_role": "rn",
            "activity": body.activity,
            "mode": body.mode,
            "status": "finished",
            "started_at": body.start,
            "ended_at": body.end,
            "minutes": int((body.end - body.start).total_seconds() // 60),
            "interactive": body.interactive,
            "notes": body.notes,
        }
        with engine.begin() as connection:
            connection.execute(insert(REFERENCE_ENTRIES), row)
        return row

    @app.get("/worklist")
    def worklist(claims: ReferenceClaims) -> list[dict[str, Any]]:
        statement = (
            select(REFERENCE_ENTRIES)
            .where(entries.staff_id == claims["staff_id"])
            .order_by(entries.started_at.desc())
            .limit(PAGE_SIZE)
        )
        with engine.connect() as connection:
            return _rows(connection.execute(statement))

    @app.get("/patients/{patient_id}/time-entries")
    def patient_entries(patient_id: str, claims: ReferenceClaims) -> list[dict[str, Any]]:
        statement = (
            select(REFERENCE_ENTRIES)
            .where(entries.patient_id == patient_id)
            .order_by(entries.started_at)
        )
        with engine.connect() as connection:
            return _rows(connection.execute(statement))

    return app


def _sqlite_synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    # fhirbridge's setting too: with WAL, a commit need not wait for the disk.
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def fhirbridge_app() -> FastAPI:
    """uvicorn factory: what ``fhirbridge serve`` runs (``cli.api_from_environment``: the app
    configured from FHIRBRIDGE_*, its start-up frozen out of the garbage collector)."""
    from fhirbridge.cli import api_from_environment

    return api_from_environment()


# -- databases and credentials -----------------------------------------------------------------


@dataclass(frozen=True)
class Caseload:
    staff: list[str]
    patients_of: dict[str, list[str]]


def _caseload(patients: int, staff_count: int) -> Caseload:
    staff = [f"cm-{n:03d}" for n in range(staff_count)]
    patients_of: dict[str, list[str]] = {s: [] for s in staff}
    for p in range(max(patients, staff_count)):
        patients_of[staff[p % staff_count]].append(f"p{p:05d}")
    return Caseload(staff, patients_of)


def _seed_fhirbridge(url: str, caseload: Caseload, enrolled_on: date) -> None:
    engine = make_engine(url)
    try:
        plan = load_mappings(PROJECT_ROOT / "mappings").plan
        with unit_of_work(make_session_factory(engine, sync_plan=plan)) as session:
            store = Store(session)
            for staff_id, patients in caseload.patients_of.items():
                store.save(
                    CareTeamMember(
                        id=staff_id, name=f"Care manager {staff_id}", role=StaffRole.RN, team=TEAM
                    )
                )
                for patient_id in patients:
                    store.save(
                        PatientLink(id=patient_id, ehr_reference=f"Patient/{patient_id}", team=TEAM)
                    )
                    enrollment = Enrollment(
                        id=f"{patient_id}-ccm",
                        patient_id=patient_id,
                        program=Program.CCM,
                        status=EnrollmentStatus.ACTIVE,
                        start=enrolled_on,
                        care_manager_id=staff_id,
                    )
                    # Repositories directly: Store.save would queue them for the FHIR server.
                    store.enrollments.save(enrollment)
                    store.consents.save(
                        ProgramConsent(
                            id=f"{enrollment.id}-consent",
                            patient_id=patient_id,
                            enrollment_id=enrollment.id,
                            program=Program.CCM,
                            status=ConsentStatus.ACTIVE,
                            given_on=enrolled_on,
                            method=ConsentMethod.VERBAL,
                            recorded_by_id=staff_id,
                        )
                    )
    finally:
        engine.dispose()


@contextmanager
def _reference_database(backend: Backend, workdir: Path, postgres_url: str) -> Iterator[str]:
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'reference-{uuid.uuid4().hex[:8]}.db'}"
        _create_reference_table(url)
        yield url
        return
    check_postgres(postgres_url)
    with postgres_schema(postgres_url) as url:
        _create_reference_table(url)
        yield url


def _create_reference_table(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")  # kept by the file
            REFERENCE_ENTRIES.metadata.create_all(connection)
    finally:
        engine.dispose()


def _write_jwks(path: Path) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=KEY_ID, use="sig", alg="RS256")
    path.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    return key


def _token(key: rsa.RSAPrivateKey, staff_id: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 4 * 3600,
        "jti": uuid.uuid4().hex,
        "sub": f"user-{staff_id}",
        "roles": ["care-manager"],
        "team": TEAM,
        "staff_id": staff_id,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KEY_ID})


# -- servers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    base_url: str
    pid: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _server(
    name: str, factory: str, env: dict[str, str], *, workers: int, access_log: bool, log: Path
) -> Iterator[Server]:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"api_load:{factory}",
        "--app-dir",
        str(BENCHMARKS),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if not access_log:
        command.append("--no-access-log")
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            _wait_until_up(process, base_url, log)
            yield Server(name, base_url, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"server at {base_url} exited ({process.returncode}):\n{tail}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {base_url} did not answer /health within 60 s")


# -- load --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in ROUTES})
    errors: Counter[str] = field(default_factory=Counter)
    ok: int = 0
    # CPU time over the measured window, in cores busy (1.0: one core all the time).
    server_cores: float | None = None
    generator_cores: float | None = None


@dataclass
class Timeline:
    """A staff member's next free time: entries follow each other and never overlap, so each
    one is accepted; kept across runs against the same database."""

    next_start: datetime
    last_start: datetime

    def take(self) -> tuple[datetime, datetime]:
        start = self.next_start
        if start > self.last_start:
            raise RuntimeError("the staff member's free time is used up: run shorter loads")
        self.next_start += ENTRY_STEP
        return start, start + ENTRY_LENGTH


def _entry_body(patient_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "program": "CCM",
        "activity": "care-coordination",
        "mode": "virtual",
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
        "interactive": True,
        "notes": "called about the new glucose meter",
    }


async def _client(
    http: httpx.AsyncClient,
    patients: list[str],
    timeline: Timeline,
    rng: random.Random,
    *,
    counted_from: float,
    until: float,
    outcome: Outcome,
) -> None:
    while (started := time.perf_counter()) < until:
        pick = rng.random()
        try:
            if pick < 0.8:
                route, expected = POST_ENTRY, 201
                start, end = timeline.take()
                response = await http.post(
                    "/time-entries",
                    json=_entry_body(rng.choice(patients), start, end),
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
            elif pick < 0.9:
                route, expected = GET_WORKLIST, 200
                response = await http.get("/worklist", params={"page_size": PAGE_SIZE})
            else:
                route, expected = GET_ENTRIES, 200
                response = await http.get(f"/patients/{rng.choice(patients)}/time-entries")
            status = str(response.status_code) if response.status_code != expected else None
        except httpx.HTTPError as error:
            status = type(error).__name__
        finished = time.perf_counter()
        # Counted by when the answer came: in-flight requests at either edge are left out.
        if not counted_from <= finished <= until:
            continue
        elapsed = finished - started
        if status is None:
            outcome.ok += 1
            outcome.latencies[route].append(elapsed * 1000)
        else:
            outcome.errors[f"{route} {status}"] += 1


async def _load(
    server: Server,
    tokens: dict[str, str],
    caseload: Caseload,
    timelines: dict[str, Timeline],
    *,
    clients: int,
    seconds: float,
    warmup: float,
    profile: Profile | None,
) -> Outcome:
    outcome = Outcome()
    rng = random.Random(clients)
    begun = time.perf_counter()
    counted_from, until = begun + warmup, begun + warmup + seconds
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    https = [
        httpx.AsyncClient(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {tokens[staff_id]}"},
            timeout=60,
            limits=limits,
        )
        for staff_id in caseload.staff[:clients]
    ]
    try:
        await asyncio.gather(
            _sample_cpu(server, counted_from, until, outcome, profile),
            *(
                _client(
                    http,
                    caseload.patients_of[staff_id],
                    timelines[staff_id],
                    random.Random(rng.random()),
                    counted_from=counted_from,
                    until=until,
                    outcome=outcome,
                )
                for http, staff_id in zip(https, caseload.staff, strict=False)
            ),
        )
    finally:
        for http in https:
            await http.aclose()
    return outcome


@dataclass(frozen=True)
class Profile:
    """Where py-spy writes collapsed stacks, and whether it samples every thread (where the
    time goes, waits included) or only the one holding the GIL (where Python's CPU goes)."""

    out: Path
    gil: bool


async def _sample_cpu(
    server: Server, counted_from: float, until: float, outcome: Outcome, profile: Profile | None
) -> None:
    await asyncio.sleep(max(0.0, counted_from - time.perf_counter()))
    profiler = None if profile is None else _start_profiler(server.pid, until, profile)
    server_before, generator_before = _cpu_seconds(server.pid), time.process_time()
    await asyncio.sleep(max(0.0, until - time.perf_counter()))
    server_after, generator_after = _cpu_seconds(server.pid), time.process_time()
    window = until - counted_from
    if server_before is not None and server_after is not None:
        outcome.server_cores = (server_after - server_before) / window
    outcome.generator_cores = (generator_after - generator_before) / window
    if profiler is not None:
        # py-spy stops by itself at the end of --duration; let it write its file.
        await asyncio.to_thread(profiler.wait, 60)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of ``pid`` and its children (uvicorn's workers); None off Linux."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0
        for process in (pid, *map(int, children)):
            # Fields after the command name: state is the first, utime the 12th, stime the 13th.
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def _start_profiler(pid: int, until: float, profile: Profile) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).with_name("py-spy")
    seconds = max(1, int(until - time.perf_counter()))
    # Non-blocking: pausing the server for every sample cut its throughput several-fold. Idle
    # samples are kept, so waits (for a pooled connection, SQLite's lock) show as well.
    command = [str(py_spy), "record", "--pid", str(pid), "--subprocesses"]
    command += ["--gil"] if profile.gil else ["--idle"]
    command += ["--nonblocking", "--duration", str(seconds), "--rate", "100"]
    command += ["--format", "raw", "-o", str(profile.out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- figures -----------------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _figures(outcome: Outcome, seconds: float) -> dict[str, Any]:
    routes: dict[str, Any] = {}
    for route, latencies in outcome.latencies.items():
        routes[route] = {"count": len(latencies)}
        if latencies:
            routes[route].update(
                {f"p{p}_ms": round(_percentile(latencies, p / 100), 1) for p in (50, 95, 99)}
            )
    # CPU per answered request: what a request costs the server, which a loaded machine
    # changes far less than the req/s it lets the server reach.
    cpu_ms = (
        None
        if outcome.server_cores is None or not outcome.ok
        else round(outcome.server_cores * seconds / outcome.ok * 1000, 2)
    )
    return {
        "requests_per_second": round(outcome.ok / seconds, 1),
        "server_cpu_ms_per_request": cpu_ms,
        "server_cores": None if outcome.server_cores is None else round(outcome.server_cores, 2),
        "load_generator_cores": None
        if outcome.generator_cores is None
        else round(outcome.generator_cores, 2),
        "errors": dict(outcome.errors.most_common()),
        "routes": routes,
    }


def _print_figures(app: str, figures: dict[str, Any]) -> None:
    errors = figures["errors"]
    shown = ", ".join(f"{n}x {what}" for what, n in errors.items()) if errors else "none"
    cpu = (
        f"server CPU {figures['server_cores']} cores = {figures['server_cpu_ms_per_request']} ms "
        f"per request, generator {figures['load_generator_cores']}"
    )
    print(f"    {app:<10} {figures['requests_per_second']:7.1f} req/s   errors: {shown}   ({cpu})")
    for route, timing in figures["routes"].items():
        if timing["count"]:
            print(
                f"      {route:<32} n={timing['count']:<6} p50 {timing['p50_ms']:7.1f}  "
                f"p95 {timing['p95_ms']:7.1f}  p99 {timing['p99_ms']:7.1f} ms"
            )
        else:
            print(f"      {route:<32} n=0")


def _print_summary(results: list[dict[str, Any]]) -> None:
    print()
    columns = ["backend", "clients", "fhirbridge req/s", "reference req/s", "ratio"]
    columns += ["POST p50", "POST p99", "errors", "server CPU ms/request (fhirbridge / ref)"]
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    for row in results:
        fhirbridge, reference = row["fhirbridge"], row["reference"]
        post = fhirbridge["routes"][POST_ENTRY]
        timing = (
            (f"{post['p50_ms']:.0f} ms", f"{post['p99_ms']:.0f} ms")
            if post["count"]
            else ("-", "-")
        )
        errors = sum(fhirbridge["errors"].values())
        cpu = (
            f"{fhirbridge['server_cpu_ms_per_request']} / {reference['server_cpu_ms_per_request']}"
        )
        print(
            f"| {row['backend']} | {row['clients']} | {fhirbridge['requests_per_second']:.1f} "
            f"| {reference['requests_per_second']:.1f} | {row['fhirbridge_over_reference']:.0%} "
            f"| {timing[0]} | {timing[1]} | {errors} | {cpu} |"
        )


def _timelines(staff: list[str], now: datetime) -> dict[str, Timeline]:
    # The previous calendar month, up to an hour ago: all past, all within one enrollment.
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first = (this_month - timedelta(days=1)).replace(day=1)
    last = now - timedelta(hours=1) - ENTRY_LENGTH
    return {s: Timeline(first, last) for s in staff}


def _run_backend(
    backend: Backend, args: argparse.Namespace, workdir: Path, key: rsa.RSAPrivateKey
) -> list[dict[str, Any]]:
    jwks = workdir / "jwks.json"
    caseload = _caseload(args.patients, max(args.clients))
    tokens = {s: _token(key, s) for s in caseload.staff}
    now = datetime.now(UTC)
    results: list[dict[str, Any]] = []
    with (
        scratch_database(backend, workdir=workdir, postgres_url=args.postgres_url) as fb_url,
        _reference_database(backend, workdir, args.postgres_url) as ref_url,
    ):
        _seed_fhirbridge(fb_url, caseload, enrolled_on=date(now.year - 1, 1, 1))
        fb_env = {
            "FHIRBRIDGE_DATABASE_URL": fb_url,
            "FHIRBRIDGE_JWT_JWKS_PATH": str(jwks),
            "FHIRBRIDGE_JWT_AUDIENCE": AUDIENCE,
            "FHIRBRIDGE_JWT_ISSUER": ISSUER,
            "FHIRBRIDGE_PRACTICE_TIMEZONE": "UTC",
        }
        ref_env = {REFERENCE_DATABASE_URL: ref_url, REFERENCE_JWKS_PATH: str(jwks)}
        options = {"workers": args.workers, "access_log": not args.no_access_log}
        with (
            _server(
                "fhirbridge",
                "fhirbridge_app",
                fb_env,
                log=(args.logs or workdir) / f"fhirbridge-{backend}.log",
                **options,
            ) as fhirbridge,
            _server(
                "reference",
                "reference_app",
                ref_env,
                log=(args.logs or workdir) / f"reference-{backend}.log",
                **options,
            ) as reference,
        ):
            timelines = {
                server.name: _timelines(caseload.staff, now) for server in (fhirbridge, reference)
            }
            if args.show_pids:
                print(
                    f"  {backend}: fhirbridge pid {fhirbridge.pid}, reference pid {reference.pid}"
                )
            for clients in args.clients:
                print(f"  {backend}, {clients} clients, {args.seconds:g} s")
                row: dict[str, Any] = {"backend": backend, "clients": clients}
                for server in (fhirbridge, reference):
                    outcome = asyncio.run(
                        _load(
                            server,
                            tokens,
                            caseload,
                            timelines[server.name],
                            clients=clients,
                            seconds=args.seconds,
                            warmup=args.warmup,
                            profile=None
                            if args.profile is None or server.name != "fhirbridge"
                            else Profile(
                                args.profile / f"fhirbridge-{backend}-{clients}.txt",
                                gil=args.profile_gil,
                            ),
                        )
                    )
                    row[server.name] = _figures(outcome, args.seconds)
                    _print_figures(server.name, row[server.name])
                reference_rate = row["reference"]["requests_per_second"]
                share = row["fhirbridge"]["requests_per_second"] / max(reference_rate, 1e-9)
                row["fhirbridge_over_reference"] = round(share, 3)
                print(f"    fhirbridge / reference throughput: {share:.0%}")
                results.append(row)
    return results


def _counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive client counts")
    return counts


def _backends(text: str) -> list[Backend]:
    chosen: list[Backend] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "sqlite":
            chosen.append("sqlite")
        elif part == "postgresql":
            chosen.append("postgresql")
        else:
            raise argparse.ArgumentTypeError(f"unknown backend {part!r}: sqlite or postgresql")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", type=_backends, default=["sqlite", "postgresql"])
    parser.add_argument("--clients", type=_counts, default=[10, 50])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per load")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds first")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--no-access-log", action="store_true", help="for both servers")
    parser.add_argument("--logs", type=Path, help="keep the servers' logs in this folder")
    parser.add_argument("--show-pids", action="store_true", help="of the servers, to profile")
    parser.add_argument(
        "--profile",
        type=Path,
        help="folder for py-spy profiles (raw, collapsed stacks) of fhirbridge's server, one "
        "per load; needs .venv/bin/pip install py-spy",
    )
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="profile only the thread holding the GIL (where Python's CPU goes)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    shown_url = make_url(args.postgres_url).render_as_string(hide_password=True)
    print(
        f"api load: {args.patients} patients, clients {args.clients}, {args.seconds:g} s each "
        f"after {args.warmup:g} s warm-up, {args.workers} worker(s), PostgreSQL at {shown_url}"
    )
    for folder in (args.profile, args.logs):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as workdir:
        key = _write_jwks(Path(workdir) / "jwks.json")
        for backend in args.backends:
            results.extend(_run_backend(backend, args, Path(workdir), key))
    _print_summary(results)
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        document = {"settings": settings, "results": results}
        args.json.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
