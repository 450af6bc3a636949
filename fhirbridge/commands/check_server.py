"""`fhirbridge check-server URL`: what a FHIR server advertises beside what actually works
there, for every interaction fhirbridge relies on, as a table (or JSON) an integration
engineer can act on.

Exit codes: 0 when no required check failed (skipped checks, with their reason, do not fail
the probe); 1 when a required check failed; 2 for a bad option. A server that cannot be reached
at all, or answers its CapabilityStatement request with something that is not FHIR, is one line
on stderr naming the URL and the cause (the command line's error boundary,
``commands.failures``: exit 4); credentials it refuses on the CapabilityStatement, or that
cannot be built from the settings, are one line too (exit 3). ``--json`` prints
``ProbeReport.to_json()`` (its shape is documented in ``fhirbridge.probe``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fhirbridge.commands.failures import ExitCode
from fhirbridge.fhir import Support
from fhirbridge.probe import Check, CheckResult, CheckStatus, Claim

# The settings, the mapping files and the probe's checks are imported by the command when it
# runs, so that `fhirbridge --help` and the other commands do not load them.
if TYPE_CHECKING:
    from fhirbridge.fhir import FhirClient
    from fhirbridge.probe import ProbeOptions, ProbeRecords, ProbeReport, ServerSummary

__all__ = ["check_server", "render"]

_STYLE = {
    CheckStatus.PASSED: "green",
    CheckStatus.FAILED: "bold red",
    CheckStatus.SKIPPED: "yellow",
}
_SUPPORT = {Support.SUPPORTED: "yes", Support.UNSUPPORTED: "no", Support.UNKNOWN: "?"}
_CLAIM = {Claim.YES: "yes", Claim.NO: "no", Claim.UNKNOWN: "?"}


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
    skip: Annotated[
        list[str] | None,
        typer.Option(
            help="Do not run this check (repeatable), e.g. --skip history --skip stale-update. "
            f"Checks: {', '.join(c.slug for c in Check)}."
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of tables.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0.1, help="Seconds per request (default FHIRBRIDGE_FHIR_TIMEOUT_SECONDS)."
        ),
    ] = None,
) -> None:
    """Check that a FHIR server does what fhirbridge needs, with test records it removes."""
    import asyncio
    import json

    from pydantic import SecretStr

    from fhirbridge import wiring
    from fhirbridge.config import Settings
    from fhirbridge.probe import ProbeOptions, ProbeRecords

    if patient is not None and not patient.startswith("Patient/"):
        raise typer.BadParameter("expected Patient/<id>", param_hint="--patient")
    try:
        skipped = frozenset(Check.named(name) for name in skip or ())
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--skip") from error
    settings = Settings()
    if token is not None:
        settings = settings.model_copy(
            update={"fhir_auth": "bearer", "fhir_token": SecretStr(token)}
        )
    options = ProbeOptions(keep=keep, patient=patient, skip=skipped)
    records = ProbeRecords.load(wiring.mappings(settings))
    client = wiring.fhir_client(settings, url, timeout=timeout)
    report = asyncio.run(_probe(client, options, records))
    if json_output:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        render(report, Console())
    raise typer.Exit(ExitCode.DONE if report.passed else ExitCode.WORK_LEFT)


async def _probe(client: FhirClient, options: ProbeOptions, records: ProbeRecords) -> ProbeReport:
    from fhirbridge.fhir import (
        FhirError,
        Forbidden,
        MalformedResponse,
        TransportError,
        Unauthorized,
    )
    from fhirbridge.probe import probe_server

    async with client:
        try:
            # A server that cannot be reached, answers something that is not FHIR at all, or
            # refuses our credentials is one line, not a table of failures: the error goes to
            # the command line's error boundary.
            await client.capabilities()
        except (TransportError, MalformedResponse, Unauthorized, Forbidden):
            raise
        except FhirError:
            pass  # a FHIR error instead of a statement: reported, and everything is tried
        return await probe_server(client, options, records=records)


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
    differ = [c for c in report.checks if c.mismatch]
    if differ:
        console.print(
            Text(
                f"{len(differ)} check(s) behave otherwise than the CapabilityStatement says",
                style="yellow",
            )
        )
    blocking = [c for c in report.checks if c.blocking]
    if blocking:
        console.print(Text(f"{len(blocking)} required check(s) failed", style="bold red"))
    else:
        console.print(Text("every required check passed or was skipped", style="green"))


def _advertised(server: ServerSummary) -> Table:
    from fhirbridge.probe import SEARCH_PARAMS_SHOWN, USED_INTERACTIONS

    title = (
        f"CapabilityStatement: FHIR {server.fhir_version or '?'}, "
        f"{server.software or 'unnamed software'}; transaction: "
        f"{'yes' if server.transaction else 'no'}; formats: {', '.join(server.formats) or '-'}"
    )
    table = Table(title=Text(title))
    for column in ("type", "interactions", "versioning", "cond. create", *SEARCH_PARAMS_SHOWN):
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
            *(_SUPPORT[item.search_params[p]] for p in SEARCH_PARAMS_SHOWN),
        )
    return table


def _checks(report: ProbeReport) -> Table:
    table = Table(title="Checks (advertised: what the CapabilityStatement claims)")
    table.add_column("type", no_wrap=True)
    table.add_column("check")
    table.add_column("result", no_wrap=True)
    table.add_column("required", no_wrap=True)
    table.add_column("advertised", no_wrap=True)
    table.add_column("works", no_wrap=True)
    # Folded, never cut: the server's error text is the point of the table.
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        table.add_row(
            check.resource_type or "server",
            check.check.value,
            Text(check.status.value, style=_STYLE[check.status]),
            "yes" if check.required else "no",
            Text(_claim(check), style="yellow" if check.mismatch else ""),
            Text(_works(check), style="yellow" if check.mismatch else ""),
            Text(_detail(check)),  # server text may contain [brackets]: never read it as markup
        )
    return table


def _claim(check: CheckResult) -> str:
    return "-" if check.advertised is None else _CLAIM[check.advertised]


def _works(check: CheckResult) -> str:
    return {True: "yes", False: "no", None: "-"}[check.works]


def _detail(check: CheckResult) -> str:
    detail = check.detail
    if check.request and check.status is CheckStatus.FAILED:
        detail = f"{detail} [{check.request}]"
    if check.mismatch:
        detail = f"{check.mismatch}: {detail}"
    return detail
