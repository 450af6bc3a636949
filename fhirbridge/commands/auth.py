"""``fhirbridge auth issue-key`` and ``fhirbridge auth dev-token``: credentials for the API.

``issue-key`` stores a new API key's hash with its role and team and prints the key once, alone
on stdout (``KEY=$(fhirbridge auth issue-key ...)``); what it grants goes to stderr. A key that
records time names the care-team member it records as (``--staff-id``), a member of its team::

    fhirbridge auth issue-key --role care-manager --team north --staff-id m-rn

``dev-token`` is for trying the API locally: it makes (once) a signing key pair and a JWKS file
in a folder of the user's (``~/.fhirbridge/dev`` by default; never inside the repository) and
prints shell lines that set the server's JWT settings to trust that JWKS and hold a token::

    eval "$(fhirbridge auth dev-token --role supervisor --team north --staff-id sup-1)"
    fhirbridge serve &
    curl -H "Authorization: Bearer $FHIRBRIDGE_DEV_TOKEN" http://127.0.0.1:8000/patients
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fhirbridge import PROJECT_ROOT
from fhirbridge.commands.failures import ExitCode, FailsCleanly
from fhirbridge.domain import Role

# The database, the settings and the credential services are imported by the command that
# runs, so that `fhirbridge --help` and the other commands do not load them.
if TYPE_CHECKING:
    from fhirbridge.services.errors import FieldError

__all__ = ["auth_app"]

auth_app = typer.Typer(cls=FailsCleanly, help="Credentials for the REST API.")

DEV_FOLDER = Path("~/.fhirbridge/dev")


def _usage_error(error: FieldError) -> typer.BadParameter:
    return typer.BadParameter(error.reason, param_hint=f"--{error.field.replace('_', '-')}")


def _check_scope(role: Role, team: str | None) -> None:
    from fhirbridge.services.credentials import scope_errors

    for error in scope_errors(role, team):
        raise _usage_error(error)


def _key_id(value: str | None) -> str | None:
    if value is not None and (not value or "." in value or len(value) > 64):
        raise typer.BadParameter("1 to 64 characters, without '.'")
    return value


@auth_app.command("issue-key")
def issue_key(
    role: Annotated[Role, typer.Option(help="Role the key grants.")],
    team: Annotated[
        str | None,
        typer.Option(help="Team the key works for (required for care-manager and supervisor)."),
    ] = None,
    staff_id: Annotated[
        str | None,
        typer.Option(
            help="Care-team member (of --team) whose time the key records; a care-manager key "
            "records time only with one."
        ),
    ] = None,
    key_id: Annotated[
        str | None,
        typer.Option(callback=_key_id, help="Id of the key (default: random); names it in logs."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Overrides FHIRBRIDGE_DATABASE_URL.")
    ] = None,
) -> None:
    """Create an API key for a machine client and print it, once: only its hash is stored."""
    from fhirbridge import wiring
    from fhirbridge.config import Settings
    from fhirbridge.persistence import Store, unit_of_work
    from fhirbridge.persistence.repositories.api_keys import ApiKeyExists
    from fhirbridge.services.credentials import issue_api_key
    from fhirbridge.services.errors import Rejected

    _check_scope(role, team)
    settings = Settings()
    try:
        with wiring.database(settings, database_url) as sessions, unit_of_work(sessions) as s:
            issued = issue_api_key(
                store=Store(s), role=role, team=team, key_id=key_id, staff_id=staff_id
            )
    except ApiKeyExists as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    except Rejected as rejected:
        raise _usage_error(rejected.errors[0]) from None
    scope = f"team {team}" if team else "every team"
    staff = f", records time as {staff_id}" if staff_id else ""
    typer.echo(
        f"API key {issued.key_id}: role {role.value}, {scope}{staff}. Shown once: fhirbridge "
        "keeps only its hash. Send it as the X-API-Key header.",
        err=True,
    )
    if role is Role.CARE_MANAGER and staff_id is None:
        typer.echo("Without --staff-id it cannot record time.", err=True)
    typer.echo(issued.key)


@auth_app.command("dev-token")
def dev_token_command(
    role: Annotated[Role, typer.Option(help="Role the token grants.")],
    team: Annotated[
        str | None,
        typer.Option(help="Team (required for care-manager and supervisor)."),
    ] = None,
    staff_id: Annotated[
        str | None,
        typer.Option(help="The care-team member id the caller records time as."),
    ] = None,
    folder: Annotated[
        Path,
        typer.Option(
            "--dir", help="Folder for the development signing key and its JWKS (not the repo)."
        ),
    ] = DEV_FOLDER,
    minutes: Annotated[int, typer.Option(min=1, max=24 * 60, help="Token lifetime.")] = 60,
) -> None:
    """For trying the API locally: print shell lines that make the server trust a development
    signing key (made once in --dir) and hold a bearer token signed with it."""
    from fhirbridge.config import Settings
    from fhirbridge.services.credentials import DEV_ISSUER, dev_signing_key, dev_token

    _check_scope(role, team)
    place = folder.expanduser().resolve()
    if place.is_relative_to(PROJECT_ROOT.resolve()):
        raise typer.BadParameter(
            "keep the development signing key out of the repository", param_hint="--dir"
        )
    settings = Settings()
    try:
        key = dev_signing_key(place)
    except (OSError, ValueError) as error:
        typer.echo(f"error: cannot use the development key in {place}: {error}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    now = datetime.now(UTC)
    token = dev_token(
        key,
        role=role,
        team=team,
        staff_id=staff_id,
        audience=settings.jwt_audience,
        now=now,
        lifetime=timedelta(minutes=minutes),
    )
    until = (now + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    who = ", ".join(
        part
        for part in (
            f"role {role.value}",
            team and f"team {team}",
            staff_id and f"staff {staff_id}",
        )
        if part
    )
    lines = [
        "# the API server (fhirbridge serve) trusts the development key with these settings:",
        f"export FHIRBRIDGE_JWT_JWKS_PATH={shlex.quote(str(key.jwks_path))}",
        f"export FHIRBRIDGE_JWT_AUDIENCE={shlex.quote(settings.jwt_audience)}",
        f"export FHIRBRIDGE_JWT_ISSUER={shlex.quote(DEV_ISSUER)}",
        f"# bearer token ({who}), valid until {until}:",
        f"export FHIRBRIDGE_DEV_TOKEN={token}",
    ]
    typer.echo("\n".join(lines))
