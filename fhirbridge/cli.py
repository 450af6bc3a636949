"""Command line: `fhirbridge demo` and friends."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.fhir import (
    AuthSettings,
    BasicAuthSettings,
    BearerAuthSettings,
    FhirClient,
    NoAuthSettings,
    SmartAuthSettings,
    build_auth,
)
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.loader import load_mappings
from fhirbridge.persistence import make_engine, make_session_factory, migrate
from fhirbridge.services.demo import DemoReport, run_demo
from fhirbridge.sync.worker import PushStats, SyncWorker, WorkerOptions

app = typer.Typer(help="fhirbridge: care management mapped to FHIR R4 and synced.")
console = Console()


@app.callback()
def main() -> None:
    """fhirbridge command line."""


@app.command()
def demo(
    fhir_url: Annotated[
        str | None, typer.Option(help="Use this FHIR server instead of starting a local one.")
    ] = None,
    caseload: Annotated[Path, typer.Option(help="Caseload file to map and push.")] = (
        PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"
    ),
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: a SQLite file in a temp folder).")
    ] = None,
    month: Annotated[str, typer.Option(help="Billing month, YYYY-MM.")] = "2026-10",
    timezone: Annotated[str, typer.Option(help="Practice time zone.")] = "America/New_York",
) -> None:
    """Map the demo caseload to FHIR R4, check it, push it to a local FHIR server, bill a month."""
    settings = Settings()
    year, mon = (int(p) for p in month.split("-"))
    with tempfile.TemporaryDirectory(prefix="fhirbridge-demo-") as workdir:
        server = None
        base_url = fhir_url
        if base_url is None:
            console.print("Starting a local FHIR R4 server (sekmet) on 127.0.0.1 ...")
            server = LocalFhirServer(workdir=Path(workdir) / "sekmet").start()
            base_url = server.base_url
        try:
            report = asyncio.run(
                run_demo(
                    database_url=database_url or f"sqlite:///{Path(workdir) / 'fhirbridge.db'}",
                    caseload_path=caseload,
                    mappings_dir=settings.mappings_dir,
                    fhir_base_url=base_url,
                    identifier_system=settings.identifier_system,
                    month=(year, mon),
                    tz=ZoneInfo(timezone),
                )
            )
        finally:
            if server is not None:
                server.stop()
    _print_report(report, base_url)


def _print_report(report: DemoReport, base_url: str) -> None:
    console.print(f"FHIR server: {base_url}")
    table = Table(title="Resources pushed")
    table.add_column("FHIR resource")
    table.add_column("count", justify="right")
    for resource, count in sorted(report.resources_by_type.items()):
        table.add_row(resource, str(count))
    console.print(table)
    console.print(f"Stored in {report.database_url}; outbox now {report.outbox}")
    console.print(
        f"{report.patients} patients: {report.created} resources created, "
        f"{report.unchanged} already on the server (conditional create / client id)."
    )
    billing = Table(title="Billing roll-up")
    billing.add_column("patient")
    billing.add_column("earned")
    billing.add_column("not earned (why)")
    for result in report.billing:
        earned = ", ".join(f"{e.code} x{e.units} ({e.minutes} min)" for e in result.earned)
        missed = "; ".join(f"{n.code}: {n.reason}" for n in result.not_earned[:3])
        billing.add_row(result.patient_id, earned or "-", missed or "-")
    console.print(billing)


sync_app = typer.Typer(help="Move records between fhirbridge and the FHIR server.")
app.add_typer(sync_app, name="sync")


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
) -> None:
    """Push pending local changes to the FHIR server (idempotent; safe to run on many hosts)."""
    settings = Settings()
    options = WorkerOptions(batch_size=batch_size, lease=timedelta(seconds=lease_seconds))
    stats = asyncio.run(
        _push(
            settings,
            database_url or settings.database_url,
            fhir_url or settings.fhir_base_url,
            worker_id or f"{socket.gethostname()}-{os.getpid()}",
            options,
            forever=worker,
        )
    )
    console.print(
        f"pushed {stats.pushed}, unchanged {stats.unchanged}, retried {stats.retried}, "
        f"deferred {stats.deferred}, dead letters {stats.dead}, conflicts {stats.conflicts}"
    )
    if stats.dead:
        raise typer.Exit(1)


async def _push(
    settings: Settings,
    database_url: str,
    fhir_url: str,
    worker_id: str,
    options: WorkerOptions,
    *,
    forever: bool,
) -> PushStats:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        async with FhirClient(
            fhir_url,
            auth=build_auth(_auth_settings(settings), base_url=fhir_url),
            timeout=settings.fhir_timeout_seconds,
            max_retries=settings.fhir_max_retries,
        ) as client:
            worker = SyncWorker(
                sessions=make_session_factory(engine),
                client=client,
                mappings=load_mappings(settings.mappings_dir),
                identifier_system=settings.identifier_system,
                worker_id=worker_id,
                options=options,
            )
            if not forever:
                return await worker.drain()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            return await worker.run_forever(stop)
    finally:
        engine.dispose()


def _auth_settings(settings: Settings) -> AuthSettings:
    """The FHIR server credentials, from FHIRBRIDGE_FHIR_AUTH and its companions."""
    if settings.fhir_auth == "bearer":
        if settings.fhir_token is None:
            raise typer.BadParameter("FHIRBRIDGE_FHIR_TOKEN is required for bearer auth")
        return BearerAuthSettings(token=settings.fhir_token)
    if settings.fhir_auth == "basic":
        if settings.fhir_username is None or settings.fhir_password is None:
            raise typer.BadParameter("FHIRBRIDGE_FHIR_USERNAME and _PASSWORD are required")
        return BasicAuthSettings(username=settings.fhir_username, password=settings.fhir_password)
    if settings.fhir_auth == "smart":
        if settings.smart_client_id is None or settings.smart_private_key_path is None:
            raise typer.BadParameter(
                "FHIRBRIDGE_SMART_CLIENT_ID and FHIRBRIDGE_SMART_PRIVATE_KEY_PATH are required"
            )
        return SmartAuthSettings(
            client_id=settings.smart_client_id,
            private_key_path=settings.smart_private_key_path,
            kid=settings.smart_key_id,
            scope=settings.smart_scopes,
        )
    return NoAuthSettings()


if __name__ == "__main__":
    app()
