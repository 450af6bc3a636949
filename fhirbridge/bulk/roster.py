"""Rosters: which patients a health plan wants exported.

Two formats are read:

* **CSV** with a header row and one patient per row, named by any one of these columns:
  ``patient_id`` (fhirbridge's patient id), ``patient`` (the EHR reference, ``Patient/123``),
  or ``identifier`` (a patient identifier value such as the MRN, with an optional ``system``
  column that must then match too). Blank rows are skipped.
* **FHIR Group** JSON: each ``member.entity`` is either a reference (``Patient/123``, matched
  against the EHR reference) or an identifier (``{system, value}``, matched like the CSV's).

Entries are read lazily, so a roster of any length is resolved page by page.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fhirbridge.bulk.errors import RosterError
from fhirbridge.sync.references import split_reference

__all__ = ["CSV_COLUMNS", "RosterEntry", "read_roster"]

CSV_COLUMNS = ("patient_id", "patient", "identifier")


@dataclass(frozen=True)
class RosterEntry:
    line: int  # CSV line, or 1-based Group member position
    patient_id: str | None = None
    reference: str | None = None
    identifier_system: str | None = None
    identifier: str | None = None


def read_roster(path: Path) -> Iterator[RosterEntry]:
    if path.suffix.lower() == ".json":
        yield from _group(path)
    else:
        yield from _csv(path)


def _csv(path: Path) -> Iterator[RosterEntry]:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise RosterError(path, None, f"cannot read ({error.strerror})") from error
    with handle:
        reader = csv.DictReader(handle)
        columns = {c.strip() for c in reader.fieldnames or []}
        if not columns & set(CSV_COLUMNS):
            raise RosterError(path, 1, f"the header needs one of {', '.join(CSV_COLUMNS)}")
        for row in reader:
            cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if not any(cells.values()):
                continue
            line = reader.line_num
            entry = RosterEntry(
                line=line,
                patient_id=cells.get("patient_id") or None,
                reference=_reference(cells.get("patient"), path, line),
                identifier_system=cells.get("system") or None,
                identifier=cells.get("identifier") or None,
            )
            if not (entry.patient_id or entry.reference or entry.identifier):
                raise RosterError(path, line, "the row names no patient")
            yield entry


def _reference(value: str | None, path: Path, line: int) -> str | None:
    if not value:
        return None
    parts = split_reference(value)
    if parts is None or parts[0] != "Patient":
        raise RosterError(path, line, "patient must be a Patient reference")
    return f"Patient/{parts[1]}"


def _group(path: Path) -> Iterator[RosterEntry]:
    try:
        group = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RosterError(path, None, "not a readable JSON file") from error
    if not isinstance(group, dict) or group.get("resourceType") != "Group":
        raise RosterError(path, None, "not a FHIR Group")
    for position, member in enumerate(group.get("member") or [], start=1):
        entity = member.get("entity") if isinstance(member, dict) else None
        if not isinstance(entity, dict):
            raise RosterError(path, position, "member without entity")
        identifier = entity.get("identifier")
        if isinstance(entity.get("reference"), str):
            yield RosterEntry(position, reference=_reference(entity["reference"], path, position))
        elif isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            system = identifier.get("system")
            yield RosterEntry(
                position,
                identifier_system=system if isinstance(system, str) else None,
                identifier=identifier["value"],
            )
        else:
            raise RosterError(path, position, "member.entity needs a reference or an identifier")
