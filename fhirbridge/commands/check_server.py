"""`fhirbridge check-server URL`: what a FHIR server advertises and whether the interactions
fhirbridge relies on actually work there, as a table (or JSON) an integration engineer can act on.

Exit code 0 when every required check passed, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import httpx
import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fhirbridge.config import Settings
from fhirbridge.fhir import BearerAuthSettings, Support, auth_settings_from, build_auth
from fhirbridge.services.probe import (
    SEARCH_PARAMS,
    USED_INTERACTIONS,
    CheckStatus,
    ProbeOptions,
    ProbeReport,
    ServerSummary,
    probe_server,
)

__all__ = ["check_server"]

_STYLE = {
    CheckStatus.PASSED: "green",
    CheckStatus.FAILED: "bold red",
    CheckStatus.SKIPPED: "yellow",
}
_SUPPORT = {Support.SUPPORTED: "yes", Support.UNSUPPORTED: "no", Support.UNKNOWN: "?"}


def check_server(
    url: Annotated[str, typer.Argument(help="FHIR base URL, e.g. https://ehr.example/fhir")],
    token: Annotated[
        str | None,
        typer.Option(help="Bearer token; without it, FHIRBRIDGE_FHIR_AUTH and friends apply."),
    ] = None,
    patient: Annotated[
        str | None,
        typer.Option(help="Use this Patient (Patient/<id>) instead of creating a probe patient."),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the probe records on the server.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of tables.")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds per request.")] = 30.0,
) -> None:
    """Check that a FHIR server supports what fhirbridge needs, with test records it removes."""
    if patient is not None and not patient.startswith("Patient/"):
        raise typer.BadParameter("expected Patient/<id>", param_hint="--patient")
    options = ProbeOptions(keep=keep, patient=patient, timeout=timeout)
    report = asyncio.run(probe_server(url, auth=_auth(url, token), options=options))
    if json_output:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        render(report, Console())
    raise typer.Exit(0 if report.passed else 1)


def _auth(url: str, token: str | None) -> httpx.Auth | None:
    try:
        if token is not None:
            return build_auth(BearerAuthSettings(token=SecretStr(token)), base_url=url)
        return build_auth(auth_settings_from(Settings()), base_url=url)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


def render(report: ProbeReport, console: Console) -> None:
    """The report as an engineer reads it: what is advertised, then each check."""
    console.print(f"FHIR server: {report.base_url}  (probe run {report.run_id})")
    if report.server is not None:
        console.print(_advertised(report.server))
    console.print(_checks(report))
    for leftover in report.leftovers:
        console.print(Text(f"left on the server: {leftover.reference} ({leftover.reason})"))
    if report.leftovers:
        console.print(Text(f"find the probe records with _tag={report.tag}"))
    blocking = [c for c in report.checks if c.blocking]
    if blocking:
        console.print(Text(f"{len(blocking)} required check(s) did not pass", style="bold red"))
    else:
        console.print(Text("every required check passed", style="green"))


def _advertised(server: ServerSummary) -> Table:
    title = (
        f"CapabilityStatement: FHIR {server.fhir_version or '?'}, "
        f"{server.software or 'unnamed software'}; transaction: "
        f"{'yes' if server.transaction else 'no'}; formats: {', '.join(server.formats) or '-'}"
    )
    table = Table(title=Text(title))
    for column in ("type", "interactions", "versioning", "cond. create", *SEARCH_PARAMS):
        table.add_column(column)
    for item in server.types:
        if item.listed:
            missing = [i for i in USED_INTERACTIONS if i not in item.interactions]
            interactions = f"missing {', '.join(missing)}" if missing else "all used"
        else:
            interactions = "type not listed"
        table.add_row(
            item.type,
            interactions,
            item.versioning or "-",
            "yes" if item.conditional_create else "no",
            *(_SUPPORT[item.search_params[p]] for p in SEARCH_PARAMS),
        )
    return table


def _checks(report: ProbeReport) -> Table:
    table = Table(title="Checks")
    table.add_column("type", no_wrap=True)
    table.add_column("check")
    table.add_column("result", no_wrap=True)
    table.add_column("required", no_wrap=True)
    # Folded, never cut: the server's error text is the point of the table.
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        detail = check.detail
        if check.request and check.status is CheckStatus.FAILED:
            detail = f"{detail} [{check.request}]"
        table.add_row(
            check.resource_type or "server",
            check.check.value,
            Text(check.status.value, style=_STYLE[check.status]),
            "yes" if check.required else "no",
            Text(detail),  # server text may contain [brackets]: never read it as markup
        )
    return table
