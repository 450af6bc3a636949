"""``fhirbridge billing rules``: the yearly billing rule files.

    fhirbridge billing rules new-year 2027   # cy2027.yaml from the latest year, all to verify

``rules_for_month`` is how billing commands get a month's rules: a year without a file is a
usage error (exit code 2) naming the file and the command above, not a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from fhirbridge import PROJECT_ROOT
from fhirbridge.commands.failures import ExitCode, FailsCleanly

# The billing package (rule schemas, YAML) is imported by the command that runs, so that
# `fhirbridge --help` and the other commands do not load it.
if TYPE_CHECKING:
    from fhirbridge.billing import RuleYear

__all__ = ["rules_app", "rules_for_month"]

console = Console()

# billing.DEFAULT_RULES_DIR, named without importing the billing package (a test holds them equal).
RULES_DIR = PROJECT_ROOT / "mappings" / "billing"

rules_app = typer.Typer(cls=FailsCleanly, help="The billing rule files, one per calendar year.")


@rules_app.command("new-year")
def new_year(
    year: Annotated[int, typer.Argument(help="Calendar year, e.g. 2027.")],
    rules_dir: Annotated[
        Path, typer.Option(file_okay=False, help="Folder of the cyYYYY.yaml files.")
    ] = RULES_DIR,
) -> None:
    """Start cyYEAR.yaml from the latest year's file, every entry flagged `verify: true`.
    Refuses to overwrite an existing file (exit code 2)."""
    from fhirbridge.billing import RuleFileError
    from fhirbridge.billing.carry_over import RuleYearExists, start_rule_year

    try:
        path, source_year = start_rule_year(year, rules_dir=rules_dir)
    except (RuleYearExists, RuleFileError) as error:
        # RuleFileError: no year to start from, or a year the schema refuses (nothing written).
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    console.print(
        f"wrote {path} from CY{source_year}: every program, code, add-on and exclusion is "
        f"flagged verify; check each against the CY{year} fee schedule"
    )


def rules_for_month(year: int) -> RuleYear:
    """The rules of ``year``, or exit code 2 with what to run when the year has no file."""
    from fhirbridge.billing import RuleYearMissing, load_rule_year

    try:
        return load_rule_year(year)
    except RuleYearMissing as missing:
        typer.echo(f"error: {missing}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
