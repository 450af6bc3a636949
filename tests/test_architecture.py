"""Structure rules the import linter cannot see (the layers themselves are a contract in
pyproject.toml, checked by ``lint-imports`` in scripts/test), and the README's promises about
the command line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import typer.main
from typer._click.core import Command
from typer.core import TyperArgument as Argument
from typer.core import TyperGroup as Group

from fhirbridge.cli import app
from fhirbridge.commands.failures import ExitCode

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fhirbridge"
README = (ROOT / "README.md").read_text()


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _calls_or_names(path: Path, name: str) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Name) and node.id == name:
            return True
        if isinstance(node, ast.Attribute) and node.attr == name:
            return True
    return False


def _calls(path: Path, name: str) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called == name:
                return True
    return False


def test_fhir_clients_are_built_only_by_the_composition_root() -> None:
    builders = [
        path.relative_to(ROOT).as_posix()
        for path in _sources()
        if _calls(path, "FhirClient") and PACKAGE / "fhir" not in path.parents
    ]

    assert builders == ["fhirbridge/wiring.py"]


@pytest.mark.parametrize("hook", ["referral_pull_hooks", "referral_loop_closer"])
def test_the_referral_rules_are_plugged_into_the_pull_only_by_the_composition_root(
    hook: str,
) -> None:
    users = [
        path.relative_to(ROOT).as_posix()
        for path in _sources()
        if _calls_or_names(path, hook) and path != PACKAGE / "services" / "referral.py"
    ]

    assert users in ([], ["fhirbridge/wiring.py"])


def test_readme_opens_with_exactly_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None
    assert README.index("```bash") < README.index("\n## ")

    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]

    assert commands == ["scripts/demo", "scripts/test"]


def _command_rows() -> list[str]:
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(fhirbridge [^`]+)` \|", section, re.M)


def _resolve(words: list[str]) -> tuple[Command, list[str]]:
    command: Command = typer.main.get_command(app)
    rest = list(words)
    while rest and isinstance(command, Group) and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    return command, rest


def _leaf_commands(group: Group, path: str) -> list[str]:
    found: list[str] = []
    for name, command in group.commands.items():
        if isinstance(command, Group):
            found += _leaf_commands(command, f"{path} {name}")
        else:
            found.append(f"{path} {name}")
    return found


def test_readme_lists_every_command_of_the_cli() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, Group)
    rows = _command_rows()

    unlisted = [
        command
        for command in _leaf_commands(root, "fhirbridge")
        if not any(row == command or row.startswith(f"{command} ") for row in rows)
    ]

    assert unlisted == []


@pytest.mark.parametrize("row", _command_rows())
def test_readme_command_line_matches_the_cli(row: str) -> None:
    command, rest = _resolve(row.split()[1:])
    assert not isinstance(command, Group), f"{row}: names a group, not a command"
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    positional = 0
    for token in rest:
        if token.startswith(("[", "--")):
            break
        positional += 1
    named = {
        part
        for token in re.findall(r"--[a-z][a-z-]*(?:/--[a-z][a-z-]*)?", row)
        for part in token.split("/")
    }

    assert named <= options, f"{row}: the CLI has no {sorted(named - options)}"
    arguments = [p for p in command.params if isinstance(p, Argument)]
    assert positional == len(arguments), f"{row}: {len(arguments)} positional argument(s)"


def test_bulk_export_takes_the_server_as_an_option_in_the_readme_and_the_cli() -> None:
    [row] = [r for r in _command_rows() if r.startswith("fhirbridge bulk export")]
    command, _ = _resolve(["bulk", "export"])

    assert "--fhir-url" in row
    assert "--fhir-url" in {opt for param in command.params for opt in param.opts}
    assert not [p for p in command.params if isinstance(p, Argument)]


def test_readme_documents_every_exit_code() -> None:
    paragraph = README.split("Exit codes, the same for every command:", 1)[1].split("\n\n", 1)[0]

    documented = {int(code) for code in re.findall(r"`(\d)`", paragraph)}

    assert documented == {code.value for code in ExitCode}
