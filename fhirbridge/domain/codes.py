"""A coded concept as the domain sees it: a system alias, a code and a human label."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Code:
    """A code from a named code system.

    ``system`` is the alias declared in ``mappings/codesystems.yaml`` (``snomed``, ``icd10cm``,
    ``loinc``...) so the domain never spells terminology URIs.
    """

    system: str
    code: str
    display: str | None = None
