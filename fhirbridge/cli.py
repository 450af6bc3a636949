"""Command line: `fhirbridge demo` and friends."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.services.demo import DemoReport, run_demo

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


if __name__ == "__main__":
    app()
