"""``fhirbridge bulk import DIR``: NDJSON files already on disk (a Bulk Data download, an EHR's
export, fhirbridge's own export) into our records, idempotently (``fhirbridge.bulk.importer``).

Into a fresh installation, the records' staff must be care-team members first: onboard them
with ``fhirbridge people import``, or let this command adopt the files' Practitioners
(``--adopt-practitioners --team T``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fhirbridge.commands.failures import ExitCode
from fhirbridge.domain import StaffRole

__all__ = ["bulk_import"]


def bulk_import(
    folder: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, help="Folder of <Type>.ndjson files to import."
        ),
    ],
    team: Annotated[
        str, typer.Option(help="Team of adopted patients and practitioners.")
    ] = "default",
    adopt_practitioners: Annotated[
        bool,
        typer.Option(
            "--adopt-practitioners/--no-adopt-practitioners",
            help="Make the files' Practitioners care-team members of --team.",
        ),
    ] = False,
    role: Annotated[
        StaffRole | None,
        typer.Option(help="Role of adopted Practitioners whose title does not say it."),
    ] = None,
    from_sync_server: Annotated[
        bool,
        typer.Option(
            help="The files came from the FHIR server fhirbridge syncs with: link server ids."
        ),
    ] = False,
    database_url: Annotated[
        str | None, typer.Option(help="Overrides FHIRBRIDGE_DATABASE_URL.")
    ] = None,
) -> None:
    """Import the NDJSON files of FOLDER (again: nothing changes). Bad lines are listed with
    file and line; exit code 1 when there were any."""
    # Imported here, so that `fhirbridge --help` and the other commands do not load them.
    from fhirbridge import wiring
    from fhirbridge.bulk import ImportOptions, import_ndjson, ndjson_files
    from fhirbridge.config import Settings

    settings = Settings()
    files = ndjson_files(folder)
    if not files:
        raise typer.BadParameter(f"no <Type>.ndjson files in {folder}", param_hint="FOLDER")
    options = ImportOptions(
        link_to_server=from_sync_server,
        adopt_practitioners=adopt_practitioners,
        practitioner_role=role,
        team=team,
    )
    with wiring.database(settings, database_url) as sessions:
        summary = import_ndjson(
            sessions=sessions,
            files=files,
            mappings=wiring.mappings(settings),
            identifier_system=settings.identifier_system,
            options=options,
            readings=wiring.reading_import(settings),
            # A discharge Encounter of a patient we have opens a TCM period.
            not_ours=wiring.pull_hooks(settings, wiring.utc_now).not_ours,
        )
    typer.echo(f"import: {summary}")
    for error in summary.errors[:50]:
        typer.echo(str(error), err=True)
    if len(summary.errors) > 50:
        typer.echo(f"... and {len(summary.errors) - 50} more", err=True)
    if summary.unknown_practitioners and not adopt_practitioners:
        named = ", ".join(sorted(summary.unknown_practitioners)[:10])
        typer.echo(
            f"not care-team members: {named}; onboard them with `fhirbridge"
            f" people import FILE --team {team}`, or import again with"
            f" `--adopt-practitioners --team {team}` from files holding their Practitioners"
        )
    if summary.errors:
        raise typer.Exit(ExitCode.WORK_LEFT)
