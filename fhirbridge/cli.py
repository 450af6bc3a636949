"""Command line: `fhirbridge demo` and friends."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console

from fhirbridge import PROJECT_ROOT
from fhirbridge.commands.auth import auth_app
from fhirbridge.commands.billing_rules import rules_app
from fhirbridge.commands.bulk import bulk_app
from fhirbridge.commands.bulk_import import bulk_import
from fhirbridge.commands.check_server import check_server
from fhirbridge.commands.export import export
from fhirbridge.commands.failures import ExitCode, FailsCleanly
from fhirbridge.commands.people import people_app

# Start-up pays only for what the command runs: the database, the mapping files, the sync, the
# API and the billing rules are imported inside the commands that use them, never here, so that
# `fhirbridge --help` loads none of them (tests/services/test_cli_imports.py).
if TYPE_CHECKING:
    from datetime import date

    from fastapi import FastAPI

    from fhirbridge.billing.report import Report
    from fhirbridge.commands.unfinished import Unfinished
    from fhirbridge.config import Settings
    from fhirbridge.services.demo import DemoReport
    from fhirbridge.sync.pull import PullReport
    from fhirbridge.sync.worker import PushStats, WorkerOptions

app = typer.Typer(
    cls=FailsCleanly,
    help="fhirbridge: care management mapped to FHIR R4 and synced. Exit codes: 0 done, "
    "1 work left undone, 2 usage, 3 credentials, 4 server unreachable or misbehaving.",
)
console = Console()


@app.callback()
def main() -> None:
    """fhirbridge command line."""


DEMO_DIR = PROJECT_ROOT / "fixtures" / "demo"


@app.command()
def demo(
    fhir_url: Annotated[
        str | None, typer.Option(help="Use this FHIR server instead of starting a local one.")
    ] = None,
    caseload: Annotated[Path, typer.Option(help="Caseload file to map and push.")] = (
        DEMO_DIR / "caseload.yaml"
    ),
    ehr: Annotated[
        Path,
        typer.Option(help="The EHR's resources the caseload points at (created if missing)."),
    ] = DEMO_DIR / "ehr",
    programs: Annotated[
        Path,
        typer.Option(
            help="The month's RPM readings, discharge and PHQ-9 (enrollments.yaml, readings/, "
            "discharge/)."
        ),
    ] = DEMO_DIR / "programs",
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: a SQLite file in a temp folder).")
    ] = None,
    month: Annotated[str, typer.Option(help="Billing month, YYYY-MM.")] = "2026-10",
    timezone: Annotated[str, typer.Option(help="Practice time zone.")] = "America/New_York",
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Afterwards keep the API and the web app running on the demo's data, with a "
            "development sign-in, until Ctrl-C.",
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the API and web app with --serve.")] = 8000,
) -> None:
    """Map the demo caseload to FHIR R4, check it, push it to a local FHIR server, bill a month.

    With --serve the demo's database and FHIR server stay up afterwards, and the web app at
    /app (sign in as any demo care-team member, development sign-in) and the API run on them.
    """
    import asyncio
    import tempfile

    from fhirbridge import wiring
    from fhirbridge.config import Settings
    from fhirbridge.localserver import LocalFhirServer

    settings = Settings(practice_timezone=_zone(timezone).key)
    year, mon = _month(month)
    with tempfile.TemporaryDirectory(prefix="fhirbridge-demo-") as workdir:
        server = None
        base_url = fhir_url
        if base_url is None:
            console.print("Starting a local FHIR R4 server (sekmet) on 127.0.0.1 ...")
            server = LocalFhirServer(workdir=Path(workdir) / "sekmet").start()
            base_url = server.base_url
        demo_database = database_url or f"sqlite:///{Path(workdir) / 'fhirbridge.db'}"
        try:
            report = asyncio.run(
                wiring.demo(
                    settings,
                    base_url=base_url,
                    database_url=demo_database,
                    caseload_path=caseload,
                    ehr_dir=ehr,
                    month=(year, mon),
                    programs_dir=programs,
                )
            )
            _print_report(report, base_url)
            if serve:
                _serve_demo(settings, database_url=demo_database, base_url=base_url, port=port)
        finally:
            if server is not None:
                server.stop()
    if not report.finished:
        raise typer.Exit(ExitCode.WORK_LEFT)


def _serve_demo(settings: Settings, *, database_url: str, base_url: str, port: int) -> None:
    """The API and the web app on the demo's data until Ctrl-C; loopback only, as the
    development sign-in lets anyone in."""
    import uvicorn

    from fhirbridge.api import create_app

    served = settings.model_copy(
        update={"database_url": database_url, "fhir_base_url": base_url, "web_dev_sign_in": True}
    )
    console.print(
        f"Web app: http://127.0.0.1:{port}/app/ (development sign-in: pick a demo care-team "
        f"member); API docs: http://127.0.0.1:{port}/docs. Ctrl-C stops it."
    )
    uvicorn.run(
        create_app(served), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


def _print_report(report: DemoReport, base_url: str) -> None:
    from rich.table import Table

    from fhirbridge.commands.unfinished import print_unfinished

    console.print(f"FHIR server: {base_url}")
    ehr = report.ehr
    console.print(
        f"EHR side: {len(ehr.created)} created, {len(ehr.present)} already there"
        + (f", no fixture for {', '.join(ehr.missing)}" if ehr.missing else "")
    )
    table = Table(title="On the FHIR server")
    table.add_column("FHIR resource")
    table.add_column("records", justify="right")
    for resource, count in sorted(report.resources_by_type.items()):
        table.add_row(resource, str(count))
    console.print(table)
    pushed = report.pushed
    console.print(
        f"Sync: {pushed.pushed} pushed, {pushed.unchanged} unchanged, {pushed.retried} retried, "
        f"{pushed.dead} dead letters, {pushed.conflicts} conflicts; outbox {report.outbox}"
    )
    if report.referral is not None:
        referral = report.referral
        console.print(
            f"Referral {referral.id} (food): the food bank moved its Task to "
            f"{referral.task_status.value}; {report.pulled} change(s) pulled; "
            f"order now {referral.status.value}"
        )
    _print_programs(report)
    if report.billing is not None:
        _print_billing(report.billing)
    if report.charges is not None:
        console.print(f"ChargeItems recorded and pushed: {len(report.charges.created)}")
    print_unfinished(console, report.dead_letters, report.conflicts)
    for skipped in report.skipped:
        console.print(f"[yellow]not done:[/yellow] {skipped}")


def _print_programs(report: DemoReport) -> None:
    """One short section each for the RPM patient, the discharge and the PHQ-9."""
    lines = (
        {}
        if report.billing is None
        else {(line.patient_id, line.code): line for line in report.billing.lines}
    )
    if report.rpm is not None:
        rpm = report.rpm
        console.print(
            f"RPM {rpm.patient_id}: {rpm.stored} blood-pressure readings from the device hub"
            + (f", {len(rpm.refused)} refused" if rpm.refused else "")
        )
        for code in ("99454", "99453"):
            line = lines.get((rpm.patient_id, code))
            if line is not None:
                verdict = "earned" if line.earned else "not earned"
                console.print(f"  {code} {verdict}: {line.explanation}")
        as_of = rpm.as_of.isoformat() if rpm.as_of else "month end"
        for alert in rpm.alerts:
            console.print(f"  worklist on {as_of} ({alert.kind.value}): {alert.summary}")
    if report.tcm is not None:
        tcm = report.tcm
        console.print(
            f"TCM {tcm.patient_id}: {tcm.discharge} discharged on "
            f"{_day(tcm.discharged_on)}, complexity "
            f"{tcm.complexity.value if tcm.complexity else 'not recorded'}"
        )
        if tcm.holidays:
            skipped = ", ".join(_day(day) for day in tcm.holidays)
            console.print(f"  business days skip the holiday {skipped}")
        console.print(
            f"  interactive contact due {_day(tcm.contact_due)}, made {_day(tcm.contact_on)}; "
            f"face-to-face visit due {_day(tcm.visit_due)}, held {_day(tcm.visit_on)}"
        )
        judgement = tcm.judgement
        if judgement is not None:
            earned = judgement.earned
            verdicts = [earned] if earned is not None else list(judgement.verdicts)
            for judged in verdicts:
                state = "earned" if judged.earned else "not earned"
                console.print(f"  {judged.code} {state}: {judged.explanation}")
    if report.phq9 is not None:
        phq9 = report.phq9
        console.print(
            f"PHQ-9 {phq9.patient_id} on {_day(phq9.authored_on)}: total {phq9.total} "
            f"({phq9.band}), {phq9.observations} Observations with the QuestionnaireResponse"
        )
        task = phq9.follow_up
        if task is not None:
            priority = task.priority.value if task.priority else "routine"
            console.print(
                f"  follow-up task ({priority}, due {_day(task.due_end)}): {task.description}"
            )


def _day(day: date | None) -> str:
    return "-" if day is None else f"{day:%a} {day.isoformat()}"


def _print_billing(report: Report) -> None:
    from rich.table import Table

    table = Table(title=f"Billing {report.month_label} (CY{report.rule_year} rules)")
    for column in ("patient", "program", "code", "units", "minutes", "why / counted"):
        table.add_column(column)
    for line in report.lines:
        why = line.explanation or ", ".join(line.entry_ids)
        table.add_row(
            line.patient_id,
            line.program.value if line.program else "-",
            f"[green]{line.code}[/green]" if line.earned else line.code,
            str(line.units) if line.earned else "-",
            "" if line.minutes is None else str(line.minutes),
            why,
        )
    console.print(table)


@app.command("migrate")
def migrate_command(
    database_url: Annotated[
        str | None, typer.Option(help="Overrides FHIRBRIDGE_DATABASE_URL.")
    ] = None,
) -> None:
    """Bring the database to the newest schema (idempotent)."""
    from fhirbridge.config import Settings
    from fhirbridge.persistence import migrate

    url = database_url or Settings().database_url
    migrate(url)
    console.print("database is at the newest schema")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes. More than 1 needs PostgreSQL: SQLite lets one process "
            "write at a time, so SQLite runs one process that queues its writers.",
        ),
    ] = 1,
) -> None:
    """Run the REST API (OpenAPI at /docs). Migrates the database first.

    With PostgreSQL, --workers N runs N processes (about one per core); each builds its app
    from the same FHIRBRIDGE_* settings. With SQLite, --workers above 1 is refused (exit 2).
    """
    import uvicorn

    from fhirbridge.config import Settings
    from fhirbridge.persistence import backend_of, migrate

    settings = Settings()
    if workers > 1 and backend_of(settings.database_url) == "sqlite":
        typer.echo(
            f"error: --workers {workers} needs PostgreSQL: SQLite lets one process write at "
            "a time, so several processes would only wait for each other's locks; "
            "run one process (--workers 1) or use a postgresql+psycopg:// database",
            err=True,
        )
        raise typer.Exit(ExitCode.USAGE)
    migrate(settings.database_url)
    uvicorn.run(
        "fhirbridge.cli:api_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # uvicorn's access line quotes the path, which holds patient ids; the app logs its own
        # with the route template instead (api.boundary).
        access_log=False,
        log_config=_server_log_config(),
    )


def _server_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, with fhirbridge's loggers (access lines by route template,
    errors by class) on the same console handler."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["fhirbridge"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def api_from_environment() -> FastAPI:
    """The app each `serve` process runs (uvicorn's factory: workers import it by name)."""
    from fhirbridge.api import create_app
    from fhirbridge.collector import settle_after_startup
    from fhirbridge.config import Settings

    api = create_app(Settings())
    settle_after_startup()
    return api


billing_app = typer.Typer(cls=FailsCleanly, help="Monthly care-management billing.")
app.add_typer(billing_app, name="billing")
billing_app.add_typer(rules_app, name="rules")


@billing_app.command("report")
def billing_report(
    month: Annotated[str, typer.Option(help="Calendar month, YYYY-MM.")],
    output: Annotated[str, typer.Option("--format", help="csv, json or table.")] = "table",
    timezone: Annotated[str | None, typer.Option(help="Practice time zone.")] = None,
    record: Annotated[
        bool, typer.Option(help="Record the month's ChargeItems (pushed by `sync push`).")
    ] = False,
) -> None:
    """The month-end report: codes and units earned per patient, and why others were not."""
    import gc

    from fhirbridge import wiring
    from fhirbridge.billing.report import write_csv, write_json
    from fhirbridge.collector import ROLL_UP_YOUNG_THRESHOLD, settle_after_startup
    from fhirbridge.commands.billing_rules import rules_for_month
    from fhirbridge.config import Settings
    from fhirbridge.persistence import Store, unit_of_work
    from fhirbridge.services.billing import monthly_report, record_charges

    settings = Settings()
    year, mon = _month(month)
    tz = _zone(timezone or settings.practice_timezone)
    rules = rules_for_month(year)
    with wiring.database(settings) as sessions, unit_of_work(sessions) as session:
        # The roll-up's collections scan only what it allocates, and seldom (see collector).
        settle_after_startup(young_threshold=ROLL_UP_YOUNG_THRESHOLD)
        try:
            report = monthly_report(Store(session), month=(year, mon), tz=tz, rules=rules)
        finally:
            gc.unfreeze()
        if record:
            run = record_charges(Store(session), report=report)
            console.print(f"charges: {len(run.created)} new, {len(run.updated)} changed")
    if output == "csv":
        write_csv(report, sys.stdout)
    elif output == "json":
        write_json(report, sys.stdout)
    else:
        _print_billing(report)


def _month(text: str) -> tuple[int, int]:
    try:
        year, mon = (int(part) for part in text.split("-"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not YYYY-MM") from None
    if not 1 <= mon <= 12:
        raise typer.BadParameter(f"{text!r} is not YYYY-MM")
    return year, mon


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"{name!r} is not an IANA time zone") from None


app.command("check-server")(check_server)
app.command("export")(export)
app.add_typer(bulk_app, name="bulk")
bulk_app.command("import")(bulk_import)
app.add_typer(people_app, name="people")
app.add_typer(auth_app, name="auth")

sync_app = typer.Typer(
    cls=FailsCleanly, help="Move records between fhirbridge and the FHIR server."
)
app.add_typer(sync_app, name="sync")


@sync_app.command("pull")
def sync_pull(
    types: Annotated[
        str, typer.Option(help="Comma-separated resource types to pull.")
    ] = "Task,ServiceRequest,CarePlan,Goal,EpisodeOfCare,Consent,Encounter",
    database_url: Annotated[
        str | None, typer.Option(help="Overrides FHIRBRIDGE_DATABASE_URL.")
    ] = None,
    fhir_url: Annotated[
        str | None, typer.Option(help="Overrides FHIRBRIDGE_FHIR_BASE_URL.")
    ] = None,
) -> None:
    """Fetch changes made on the server since the last pull and apply them (or record
    conflicts). Exit code 1 when dead letters or open conflicts are left."""
    import asyncio

    from fhirbridge.commands.unfinished import print_unfinished
    from fhirbridge.config import Settings

    settings = Settings()
    wanted = [t.strip() for t in types.split(",") if t.strip()]
    report, left = asyncio.run(
        _pull(settings, database_url or settings.database_url, fhir_url, wanted)
    )
    console.print(
        f"fetched {report.fetched}, applied {len(report.applied)}, "
        f"conflicts {len(report.conflict_ids)}"
    )
    if print_unfinished(console, *left):
        raise typer.Exit(ExitCode.WORK_LEFT)


async def _pull(
    settings: Settings, database_url: str, fhir_url: str | None, types: list[str]
) -> tuple[PullReport, Unfinished]:
    from fhirbridge import wiring
    from fhirbridge.commands.unfinished import unfinished

    with wiring.database(settings, database_url) as sessions:
        async with wiring.fhir_client(settings, fhir_url) as client:
            report = await wiring.puller(settings, client=client, sessions=sessions)(types)
        return report, unfinished(sessions)


@sync_app.command("push")
def sync_push(
    worker: Annotated[
        bool, typer.Option("--worker/--once", help="Keep running, or drain the outbox once.")
    ] = False,
    database_url: Annotated[
        str | None, typer.Option(help="Overrides FHIRBRIDGE_DATABASE_URL.")
    ] = None,
    fhir_url: Annotated[
        str | None, typer.Option(help="Overrides FHIRBRIDGE_FHIR_BASE_URL.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Entries per transaction.")] = 200,
    worker_id: Annotated[str | None, typer.Option(help="Name in the outbox claims.")] = None,
    lease_seconds: Annotated[
        int, typer.Option(min=0, help="Release entries claimed longer ago (their worker died).")
    ] = 300,
    max_transaction_entries: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Most entries the server takes in one transaction "
            "(FHIRBRIDGE_FHIR_MAX_TRANSACTION_ENTRIES; learned from a refusal otherwise).",
        ),
    ] = None,
) -> None:
    """Push pending local changes to the FHIR server (idempotent; safe to run on many hosts).
    Exit code 1 when dead letters or open conflicts are left."""
    import asyncio
    import socket
    import time
    from datetime import timedelta

    from fhirbridge.commands.unfinished import print_unfinished
    from fhirbridge.config import Settings
    from fhirbridge.sync.worker import WorkerOptions

    settings = Settings()
    options = WorkerOptions(
        batch_size=batch_size,
        lease=timedelta(seconds=lease_seconds),
        max_transaction_entries=max_transaction_entries,
    )
    started = time.perf_counter()
    stats, left = asyncio.run(
        _push(
            settings,
            database_url or settings.database_url,
            fhir_url,
            worker_id or f"{socket.gethostname()}-{os.getpid()}",
            options,
            forever=worker,
        )
    )
    console.print(
        f"pushed {stats.pushed}, unchanged {stats.unchanged}, retried {stats.retried}, "
        f"deferred {stats.deferred}, dead letters {stats.dead}, conflicts {stats.conflicts} "
        f"in {time.perf_counter() - started:.1f}s"
    )
    undone = print_unfinished(console, *left)
    if stats.retried and not worker:
        last = stats.errors[-1] if stats.errors else "a transient failure"
        console.print(f"[yellow]not done:[/yellow] records wait for a retry after: {last}")
        undone = True
    if undone:
        raise typer.Exit(ExitCode.WORK_LEFT)


async def _push(
    settings: Settings,
    database_url: str,
    fhir_url: str | None,
    worker_id: str,
    options: WorkerOptions,
    *,
    forever: bool,
) -> tuple[PushStats, Unfinished]:
    import asyncio
    import signal

    from fhirbridge import wiring
    from fhirbridge.commands.unfinished import unfinished

    with wiring.database(settings, database_url) as sessions:
        async with wiring.fhir_client(settings, fhir_url) as client:
            # The worker reads the CapabilityStatement first anyway (the client keeps it);
            # reading it here tells "the server is unreachable" apart from a record's failure,
            # which the worker retries or dead-letters.
            await client.capabilities()
            worker = wiring.sync_worker(
                settings, client=client, sessions=sessions, worker_id=worker_id, options=options
            )
            if forever:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                stats = await worker.run_forever(stop)
            else:
                stats = await worker.drain()
        return stats, unfinished(sessions)


if __name__ == "__main__":
    app()
