"""``fhirbridge export``: our own records as NDJSON (and a transaction Bundle) for health plans."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fhirbridge.commands.failures import ExitCode
from fhirbridge.domain import Program

__all__ = ["export"]

console = Console()


def export(
    out: Annotated[Path, typer.Option("--out", help="Folder for the NDJSON files.")],
    since: Annotated[
        datetime | None,
        typer.Option(help="Only records changed on or after this date (or date-time, UTC)."),
    ] = None,
    program: Annotated[
        Program | None, typer.Option(help="Only patients enrolled in this program.")
    ] = None,
    roster: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="CSV (patient_id, patient or identifier[+system] column) or FHIR Group JSON.",
        ),
    ] = None,
    bundle: Annotated[bool, typer.Option(help="Also write a transaction Bundle.")] = False,
    database_url: Annotated[
        str | None, typer.Option(help="Overrides FHIRBRIDGE_DATABASE_URL.")
    ] = None,
) -> None:
    """Export everything fhirbridge owns for the selected patients as NDJSON per resource type
    (EpisodeOfCare, Consent, CarePlan, Goal, Task, Encounter (time entries and TCM contacts),
    ServiceRequest, ChargeItem, CareTeam, and Observation for RPM device readings), each
    resource checked against the profiles first. Assessments add QuestionnaireResponse,
    Observation (screening answers and scores) and Condition (health concerns found)."""
    # Imported here, so that `fhirbridge --help` and the other commands do not load them.
    from fhirbridge import wiring
    from fhirbridge.bulk import BulkError, ExportSelection
    from fhirbridge.config import Settings
    from fhirbridge.services.exchange import export_for_health_plan

    settings = Settings()
    when = since if since is None or since.tzinfo else since.replace(tzinfo=UTC)
    try:
        with wiring.database(settings, database_url) as sessions:
            report = export_for_health_plan(
                sessions=sessions,
                mappings=wiring.mappings(settings),
                identifier_system=settings.identifier_system,
                folder=out,
                selection=ExportSelection(since=when, program=program),
                roster=roster,
                bundle=bundle,
                readings=wiring.reading_import(settings),
            )
    except BulkError as error:
        typer.echo(f"error: export failed: {error}", err=True)
        raise typer.Exit(ExitCode.WORK_LEFT) from None
    console.print(f"{report.patients} patients exported to {report.folder}")
    for rtype, path in report.files().items():
        console.print(f"  {rtype:<16} {report.counts[rtype]:>8}  {path.name}")
    if report.bundle is not None:
        console.print(f"  transaction Bundle: {report.bundle.name}")
    if report.roster_unmatched:
        console.print(
            f"[yellow]{report.roster_unmatched} roster entries matched no patient[/yellow]"
        )
    for rejected in report.rejected[:50]:
        console.print(f"  [red]left out[/red] {rejected.label}: {'; '.join(rejected.reasons)}")
    if report.rejected:
        raise typer.Exit(ExitCode.WORK_LEFT)
