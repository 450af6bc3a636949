"""fhirbridge: care management mapped to FHIR R4 and synced with the systems around it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

__version__ = "0.1.0"

# The checkout the package runs from (mappings/, fixtures/). Here rather than in ``config``, so
# that the command line names its default folders without importing the settings machinery.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A package's module ``__getattr__`` (PEP 562) for the names it re-exports from its
    submodules (``exports``: name -> submodule): a name's submodule is imported when the name
    is first used, so a command that needs one of them does not load the others. The package
    also imports them under ``TYPE_CHECKING``, which is what type checkers read."""

    def attribute(name: str) -> object:
        submodule = exports.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{submodule}"), name)
        # Cached on the package: the next use is a plain attribute read.
        setattr(sys.modules[package], name, value)
        return value

    return attribute
