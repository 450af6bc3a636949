"""``fhirbridge bulk export``: a FHIR Bulk Data export from a server, downloaded and resumable.

With ``--import`` the files are imported as ``fhirbridge bulk import`` would, with the same
adoption options (``--adopt-practitioners --team T --role R``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from fhirbridge.bulk import ExportLevel, FileProgress, PollStatus
from fhirbridge.commands.failures import ExitCode, FailsCleanly
from fhirbridge.domain import StaffRole

# The database, the settings and the services are imported by the command when it runs, so
# that `fhirbridge --help` and the other commands do not load them.
if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from fhirbridge.bulk import ExportRequest, ImportOptions, PollPolicy
    from fhirbridge.config import Settings
    from fhirbridge.services.exchange import BulkExchangeReport

__all__ = ["bulk_app"]

bulk_app = typer.Typer(
    cls=FailsCleanly, help="FHIR Bulk Data exchange ($export) with health plans and EHRs."
)
console = Console()


class _Bar:
    """Polling status and file downloads as rich progress bars."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._poll: TaskID | None = None
        self._files: dict[str, TaskID] = {}

    def __call__(self, event: PollStatus | FileProgress) -> None:
        if isinstance(event, PollStatus):
            text = event.progress or ("rate limited" if event.rate_limited else "in progress")
            label = f"export: {text} (poll {event.polls}, next in {event.next_wait:.0f}s)"
            if self._poll is None:
                self._poll = self._progress.add_task(label, total=None)
            self._progress.update(self._poll, description=label)
            return
        task = self._files.get(event.url)
        if task is None:
            task = self._progress.add_task(event.name, total=None)
            self._files[event.url] = task
        if event.done:
            self._progress.update(task, completed=event.received, total=event.received)
        else:
            self._progress.update(task, completed=event.received)


@bulk_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Folder for the NDJSON files and state.")],
    fhir_url: Annotated[
        str | None, typer.Option(help="FHIR server (default FHIRBRIDGE_FHIR_BASE_URL).")
    ] = None,
    level: Annotated[ExportLevel, typer.Option(help="system, patient or group.")] = (
        ExportLevel.SYSTEM
    ),
    group: Annotated[str | None, typer.Option(help="Group id (with --level group).")] = None,
    types: Annotated[
        str | None, typer.Option("--type", help="_type: comma-separated resource types.")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="_since: only resources changed since then.")
    ] = None,
    type_filter: Annotated[
        list[str] | None, typer.Option("--type-filter", help="_typeFilter, e.g. Task?status=ready")
    ] = None,
    import_: Annotated[
        bool, typer.Option("--import/--no-import", help="Import the files into our database.")
    ] = False,
    database_url: Annotated[
        str | None, typer.Option(help="Overrides FHIRBRIDGE_DATABASE_URL (with --import).")
    ] = None,
    team: Annotated[
        str | None,
        typer.Option(
            help="Team of adopted patients and practitioners (with --import).",
            show_default="default",
        ),
    ] = None,
    adopt_practitioners: Annotated[
        bool,
        typer.Option(
            "--adopt-practitioners/--no-adopt-practitioners",
            help="Make the files' Practitioners care-team members of --team (with --import).",
        ),
    ] = False,
    role: Annotated[
        StaffRole | None,
        typer.Option(
            help="Role of adopted Practitioners whose title does not say it (with --import)."
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option(help="Forget an unfinished export in --out and start a new one.")
    ] = False,
    keep_on_interrupt: Annotated[
        bool,
        typer.Option(help="On Ctrl-C keep the server's export to resume later (no DELETE)."),
    ] = False,
    max_wait: Annotated[
        float, typer.Option(min=1, help="Longest wait between polls, seconds.")
    ] = 120.0,
    timeout: Annotated[float, typer.Option(min=1, help="Give up polling after, seconds.")] = (
        6 * 3600.0
    ),
) -> None:
    """Kick off $export, poll (honouring Retry-After), download every NDJSON file (resuming
    what an earlier run left), verify line counts, and optionally import."""
    import asyncio

    from fhirbridge.bulk import BulkError, ExportRequest, ImportOptions, PollPolicy
    from fhirbridge.config import Settings

    if not import_ and (team is not None or adopt_practitioners or role is not None):
        # Refused rather than ignored: whoever typed them expects an import.
        raise typer.BadParameter(
            "--team, --adopt-practitioners and --role apply to the import",
            param_hint="--import",
        )
    settings = Settings()
    base_url = fhir_url or settings.fhir_base_url
    request = ExportRequest(
        level=level,
        group_id=group,
        types=tuple(t.strip() for t in (types or "").split(",") if t.strip()),
        since=since,
        type_filters=tuple(type_filter or ()),
    )
    policy = PollPolicy(max_interval=max_wait, timeout=timeout)
    try:
        report = asyncio.run(
            _run(
                settings,
                base_url,
                request,
                out,
                policy,
                restart=restart,
                keep=keep_on_interrupt,
                database_url=(database_url or settings.database_url) if import_ else None,
                import_options=ImportOptions(
                    adopt_practitioners=adopt_practitioners,
                    practitioner_role=role,
                    team=team or "default",
                ),
            )
        )
    except BulkError as error:
        # What the export itself reports (failed, expired, incomplete); an unreachable or
        # misbehaving server is the command line's error boundary's (exit code 4).
        typer.echo(f"error: bulk export from {base_url} failed: {error}", err=True)
        raise typer.Exit(ExitCode.WORK_LEFT) from None
    _print(report)
    if report.imported is not None and report.imported.errors:
        raise typer.Exit(ExitCode.WORK_LEFT)


async def _run(
    settings: Settings,
    base_url: str,
    request: ExportRequest,
    out: Path,
    policy: PollPolicy,
    *,
    restart: bool,
    keep: bool,
    database_url: str | None,
    import_options: ImportOptions,
) -> BulkExchangeReport:
    import contextlib

    from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn

    from fhirbridge import wiring
    from fhirbridge.services.exchange import fetch_bulk_export

    with contextlib.ExitStack() as stack:
        sessions = None
        if database_url is not None:
            sessions = stack.enter_context(wiring.database(settings, database_url))
        async with wiring.fhir_client(settings, base_url) as client:
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                console=console,
                transient=True,
            ) as progress:
                return await fetch_bulk_export(
                    client=client,
                    request=request,
                    folder=out,
                    policy=policy,
                    restart=restart,
                    cancel_on_interrupt=not keep,
                    on_progress=_Bar(progress),
                    import_into=sessions,
                    mappings=wiring.mappings(settings) if sessions else None,
                    identifier_system=settings.identifier_system,
                    sync_base_url=settings.fhir_base_url,
                    import_options=import_options,
                )


def _print(report: BulkExchangeReport) -> None:
    result = report.export
    console.print(
        f"{len(result.files)} files in {result.folder} ({result.downloaded} downloaded,"
        f" {result.reused} already complete)"
    )
    for item in result.files:
        console.print(f"  {item.type:<16} {item.lines:>8} resources  {item.name}")
    for issue in result.issues[:20]:
        console.print(
            f"  [yellow]server {issue.severity}[/yellow]: {issue.diagnostics or issue.code}"
        )
    if report.imported is not None:
        console.print(f"import: {report.imported}")
        for error in report.imported.errors[:50]:
            console.print(f"  [red]{error}[/red]")
