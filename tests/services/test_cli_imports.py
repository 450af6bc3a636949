"""What the command line loads at start-up: only what the command it runs uses.

Each check runs in a fresh interpreter, since this test process has imported everything
already; they look at ``sys.modules``, never at timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import fhirbridge.bulk
import fhirbridge.domain
import fhirbridge.probe
from fhirbridge.billing import DEFAULT_RULES_DIR
from fhirbridge.commands.billing_rules import RULES_DIR

# Never needed to parse a command line: the API and the web app (serve, demo --serve), the
# database and its migrations, the billing rules.
SERVER_AND_STORAGE = (
    "fastapi",
    "uvicorn",
    "jinja2",
    "alembic",
    "sqlalchemy",
    "fhirbridge.api",
    "fhirbridge.web",
    "fhirbridge.persistence",
    "fhirbridge.billing",
)


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter (with this process's environment) holds after running
    ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def _present(loaded: set[str], packages: tuple[str, ...]) -> list[str]:
    return [p for p in packages if any(m == p or m.startswith(f"{p}.") for m in loaded)]


def test_importing_the_command_line_loads_no_server_storage_or_billing() -> None:
    loaded = _loaded_after("import fhirbridge.cli")

    assert "fhirbridge.cli" in loaded
    assert _present(loaded, SERVER_AND_STORAGE) == []


def test_help_of_every_command_loads_no_server_storage_or_billing() -> None:
    code = """
import contextlib, io
import typer.main
from typer.core import TyperGroup
from fhirbridge.cli import app

def paths(group, prefix):
    for name, command in group.commands.items():
        yield [*prefix, name]
        if isinstance(command, TyperGroup):
            yield from paths(command, [*prefix, name])

for words in [[], *paths(typer.main.get_command(app), [])]:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            app([*words, "--help"], prog_name="fhirbridge")
        except SystemExit as done:
            assert done.code == 0, (words, done.code)
"""
    loaded = _loaded_after(code)

    assert _present(loaded, SERVER_AND_STORAGE) == []


def test_billing_report_loads_neither_the_sync_nor_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FHIRBRIDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'billing.db'}")
    code = """
import contextlib, io
from fhirbridge.cli import app
with contextlib.redirect_stdout(io.StringIO()):
    try:
        app(["billing", "report", "--month", "2026-10", "--format", "csv"])
    except SystemExit as done:
        assert done.code == 0, done.code
"""
    loaded = _loaded_after(code)

    assert "fhirbridge.services.billing" in loaded
    assert _present(loaded, ("fastapi", "fhirbridge.sync", "fhirbridge.services.demo")) == []


@pytest.mark.parametrize("package", [fhirbridge.bulk, fhirbridge.domain, fhirbridge.probe])
def test_a_package_that_loads_its_names_on_use_resolves_every_name(package: ModuleType) -> None:
    names = package.__all__

    missing = [name for name in names if not hasattr(package, name)]

    assert missing == []


def test_the_rule_files_folder_of_the_command_line_is_the_billing_default() -> None:
    assert RULES_DIR.resolve() == DEFAULT_RULES_DIR.resolve()
