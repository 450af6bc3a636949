"""``fhirbridge people import``: onboard patients and care-team members from a file.

Formats (``fhirbridge.bulk.roster.read_people``): CSV of patients
(``id,ehr_reference[,mrn_system,mrn_value]``) or of members
(``id,name,role[,practitioner_reference,npi]``), or NDJSON of FHIR Patient and Practitioner
resources. Everyone lands in ``--team``. Running it again is safe: a record already stored with
the same id (or the same EHR reference) is updated, or counted unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fhirbridge.commands.failures import ExitCode, FailsCleanly
from fhirbridge.domain import StaffRole

__all__ = ["people_app"]

people_app = typer.Typer(
    cls=FailsCleanly, help="Onboard the patients and care-team members fhirbridge works with."
)

TEAM_LENGTH = 64


def _team(value: str) -> str:
    if not value.strip() or len(value) > TEAM_LENGTH or value != value.strip():
        raise typer.BadParameter(f"a team name of 1 to {TEAM_LENGTH} characters, no spaces around")
    return value


@people_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV of patients or care-team members, or NDJSON of FHIR Patient and "
            "Practitioner resources.",
        ),
    ],
    team: Annotated[
        str, typer.Option(callback=_team, help="The care team everyone in the file joins.")
    ],
    role: Annotated[
        StaffRole | None,
        typer.Option(
            help="Role of Practitioners whose qualification or name suffix does not say it."
        ),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Overrides FHIRBRIDGE_DATABASE_URL.")
    ] = None,
) -> None:
    """Create or update the patients and care-team members of FILE (idempotent). A bad line is
    reported with its number and the rest go on; exit code 1 when any line was refused."""
    # Imported here, so that `fhirbridge --help` and the other commands do not load them.
    from fhirbridge import wiring
    from fhirbridge.bulk import RosterError
    from fhirbridge.bulk.roster import read_people
    from fhirbridge.config import Settings
    from fhirbridge.services.people import import_people

    settings = Settings()
    with wiring.database(settings, database_url) as sessions:
        try:
            summary = import_people(
                sessions=sessions, lines=read_people(file, team=team, default_role=role)
            )
        except RosterError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(ExitCode.USAGE) from None
    typer.echo(f"{file.name}: {summary}")
    for problem in summary.errors:
        typer.echo(f"{file.name}:{problem.line}: {problem.reason}", err=True)
    if summary.errors:
        raise typer.Exit(ExitCode.WORK_LEFT)
