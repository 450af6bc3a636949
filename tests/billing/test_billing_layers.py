"""The billing package judges; it does not query. SQL lives in the persistence read model
``store.month_minutes``, and the summary path reuses the roll-up's public steps, not its
private helpers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fhirbridge.billing

PACKAGE = Path(fhirbridge.billing.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def _imports(module: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(module imported, names imported from it) of every import statement."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(module.read_text(), str(module))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, tuple(alias.name for alias in node.names)))
    return found


@pytest.mark.parametrize("module", MODULES, ids=[m.stem for m in MODULES])
def test_billing_modules_import_neither_sqlalchemy_nor_persistence(module: Path) -> None:
    imported = [name for name, _ in _imports(module)]

    assert [
        name
        for name in imported
        if name.split(".")[0] == "sqlalchemy" or name.startswith("fhirbridge.persistence")
    ] == []


@pytest.mark.parametrize("module", MODULES, ids=[m.stem for m in MODULES])
def test_billing_modules_import_no_private_name_of_another_module(module: Path) -> None:
    private = [
        f"{source}.{name}"
        for source, names in _imports(module)
        if source.startswith("fhirbridge.")
        for name in names
        if name.startswith("_")
    ]

    assert private == []
