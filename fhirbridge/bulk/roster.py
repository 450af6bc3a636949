"""Rosters: which patients a health plan wants exported, and the people an installation starts
with (patients and care-team members, ``read_people``).

Two export roster formats are read:

* **CSV** with a header row and one patient per row, named by any one of these columns:
  ``patient_id`` (fhirbridge's patient id), ``patient`` (the EHR reference, ``Patient/123``),
  or ``identifier`` (a patient identifier value such as the MRN, with an optional ``system``
  column that must then match too). Blank rows are skipped.
* **FHIR Group** JSON: each ``member.entity`` is either a reference (``Patient/123``, matched
  against the EHR reference) or an identifier (``{system, value}``, matched like the CSV's).

Entries are read lazily, so a roster of any length is resolved page by page.

People files (``read_people``, behind ``fhirbridge people import``) are read line by line too:

* **CSV** of patients, header ``id,ehr_reference[,mrn_system,mrn_value]``, or of care-team
  members, header ``id,name,role[,practitioner_reference,npi]`` (the header says which);
* **NDJSON** of FHIR ``Patient`` resources (a patient link to that Patient, its id the Patient's
  id, its MRN the identifier typed ``MR``) and ``Practitioner`` resources (a member with the
  Practitioner's id, name and NPI; the role from a qualification code or name suffix such as
  ``MD`` or ``RN``, else the role the caller gives).

A line that cannot be read is yielded with its reason and number, never raised: the other lines
go on. A file that cannot be read at all (no such file, a header naming neither kind) raises
``RosterError``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhirbridge.bulk.errors import RosterError
from fhirbridge.domain import CareTeamMember, PatientLink, StaffRole
from fhirbridge.sync.references import split_reference

__all__ = [
    "CSV_COLUMNS",
    "MEMBER_COLUMNS",
    "PATIENT_COLUMNS",
    "PersonLine",
    "RosterEntry",
    "member_from_practitioner",
    "patient_from_fhir",
    "read_people",
    "read_roster",
]

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


# -- people files --------------------------------------------------------------------------

PATIENT_COLUMNS = ("id", "ehr_reference", "mrn_system", "mrn_value")
MEMBER_COLUMNS = ("id", "name", "role", "practitioner_reference", "npi")
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
_MRN_TYPE = ("http://terminology.hl7.org/CodeSystem/v2-0203", "MR")

# Qualification codes (HL7 v2-0360) and name suffixes that say whose minutes count for which
# billing code; anything else needs the role given by the caller.
_ROLE_BY_QUALIFICATION = {
    "MD": StaffRole.PHYSICIAN,
    "DO": StaffRole.PHYSICIAN,
    "NP": StaffRole.PHYSICIAN,
    "PA": StaffRole.PHYSICIAN,
    "PA-C": StaffRole.PHYSICIAN,
    "CNS": StaffRole.PHYSICIAN,
    "APRN": StaffRole.PHYSICIAN,
    "RN": StaffRole.RN,
    "LCSW": StaffRole.LCSW,
    "CHW": StaffRole.CHW,
    "MA": StaffRole.CLINICAL_STAFF,
    "CMA": StaffRole.CLINICAL_STAFF,
    "LPN": StaffRole.CLINICAL_STAFF,
}


@dataclass(frozen=True)
class PersonLine:
    """One line of a people file: the record it names, or why it names none."""

    line: int
    record: PatientLink | CareTeamMember | None = None
    error: str | None = None
    # Read from an EHR resource: its id is the EHR's, so the EHR reference is what identifies
    # a record stored earlier under another local id.
    from_ehr: bool = False


def read_people(
    path: Path, *, team: str, default_role: StaffRole | None = None
) -> Iterator[PersonLine]:
    """The patients and members of ``path`` (see module doc), all in ``team``."""
    if path.suffix.lower() in (".ndjson", ".jsonl"):
        yield from _people_ndjson(path, team, default_role)
    else:
        yield from _people_csv(path, team)


def patient_from_fhir(resource: dict[str, Any], *, team: str) -> PatientLink:
    """A link to a FHIR Patient; ValueError names what is missing."""
    patient_id = _resource_id(resource, "Patient")
    mrn_system, mrn_value = None, None
    for identifier in _dicts(resource.get("identifier")):
        codings = _dicts((identifier.get("type") or {}).get("coding"))
        if any((c.get("system"), c.get("code")) == _MRN_TYPE for c in codings):
            mrn_system = _text(identifier.get("system"))
            mrn_value = _text(identifier.get("value"))
            break
    return PatientLink(
        id=patient_id,
        ehr_reference=f"Patient/{patient_id}",
        mrn_system=mrn_system,
        mrn_value=mrn_value,
        team=team,
    )


def member_from_practitioner(
    resource: dict[str, Any], *, team: str, default_role: StaffRole | None = None
) -> CareTeamMember:
    """A care-team member for a FHIR Practitioner; ValueError names what is missing."""
    practitioner_id = _resource_id(resource, "Practitioner")
    names = _dicts(resource.get("name"))
    official = [n for n in names if n.get("use") == "official"] or names
    if not official:
        raise ValueError("Practitioner.name: missing")
    name = _display_name(official[0])
    if not name:
        raise ValueError("Practitioner.name: neither text nor family/given")
    role = _role_of(resource, official[0]) or default_role
    if role is None:
        raise ValueError(
            "Practitioner.qualification: no code that says the role (MD, NP, RN, LCSW, CHW, MA,"
            " ...); give the role for such practitioners (--role)"
        )
    npi = next(
        (
            _text(i.get("value"))
            for i in _dicts(resource.get("identifier"))
            if i.get("system") == NPI_SYSTEM
        ),
        None,
    )
    return CareTeamMember(
        id=practitioner_id,
        name=name,
        role=role,
        practitioner_reference=f"Practitioner/{practitioner_id}",
        npi=npi,
        team=team,
    )


def _people_csv(path: Path, team: str) -> Iterator[PersonLine]:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise RosterError(path, None, f"cannot read ({error.strerror})") from error
    with handle:
        reader = csv.DictReader(handle)
        columns = {c.strip() for c in reader.fieldnames or []}
        read_row: Callable[[dict[str, str], str], PatientLink | CareTeamMember]
        if {"id", "ehr_reference"} <= columns:
            read_row = _patient_row
        elif {"id", "name", "role"} <= columns:
            read_row = _member_row
        else:
            raise RosterError(
                path,
                1,
                f"the header names patients ({', '.join(PATIENT_COLUMNS)}) or care-team members"
                f" ({', '.join(MEMBER_COLUMNS)})",
            )
        for row in reader:
            line = reader.line_num
            cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if not any(cells.values()):
                continue
            if None in row:
                yield PersonLine(line, error="more cells than the header has columns")
                continue
            try:
                yield PersonLine(line, read_row(cells, team))
            except ValueError as error:
                yield PersonLine(line, error=str(error))


def _patient_row(cells: dict[str, str], team: str) -> PatientLink:
    return PatientLink(
        id=_required(cells, "id"),
        ehr_reference=_required(cells, "ehr_reference"),
        mrn_system=cells.get("mrn_system") or None,
        mrn_value=cells.get("mrn_value") or None,
        team=team,
    )


def _member_row(cells: dict[str, str], team: str) -> CareTeamMember:
    role = _required(cells, "role")
    if role not in {r.value for r in StaffRole}:
        raise ValueError(f"role: one of {', '.join(r.value for r in StaffRole)}")
    return CareTeamMember(
        id=_required(cells, "id"),
        name=_required(cells, "name"),
        role=StaffRole(role),
        practitioner_reference=cells.get("practitioner_reference") or None,
        npi=cells.get("npi") or None,
        team=team,
    )


def _required(cells: dict[str, str], column: str) -> str:
    value = cells.get(column)
    if not value:
        raise ValueError(f"{column}: required")
    return value


def _people_ndjson(path: Path, team: str, default_role: StaffRole | None) -> Iterator[PersonLine]:
    try:
        handle = path.open("rb")
    except OSError as error:
        raise RosterError(path, None, f"cannot read ({error.strerror})") from error
    with handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                resource = json.loads(text)
            except ValueError:
                yield PersonLine(number, error="not a JSON object")
                continue
            kind = resource.get("resourceType") if isinstance(resource, dict) else None
            try:
                if kind == "Patient":
                    patient = patient_from_fhir(resource, team=team)
                    yield PersonLine(number, patient, from_ehr=True)
                elif kind == "Practitioner":
                    member = member_from_practitioner(
                        resource, team=team, default_role=default_role
                    )
                    yield PersonLine(number, member, from_ehr=True)
                else:
                    yield PersonLine(
                        number, error=f"expected a Patient or Practitioner, found {kind!r}"
                    )
            except ValueError as error:
                yield PersonLine(number, error=str(error))


def _resource_id(resource: dict[str, Any], kind: str) -> str:
    value = resource.get("id")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind}.id: missing")
    return value


def _display_name(name: dict[str, Any]) -> str:
    text = _text(name.get("text"))
    if text:
        return text
    given = [g for g in name.get("given") or [] if isinstance(g, str)]
    family = _text(name.get("family"))
    parts = [*_strings(name.get("prefix")), *given, *([family] if family else [])]
    suffixes = _strings(name.get("suffix"))
    full = " ".join(parts)
    return f"{full}, {' '.join(suffixes)}" if full and suffixes else full


def _role_of(resource: dict[str, Any], name: dict[str, Any]) -> StaffRole | None:
    codes = [
        _text(coding.get("code")) or ""
        for qualification in _dicts(resource.get("qualification"))
        for coding in _dicts((qualification.get("code") or {}).get("coding"))
    ]
    codes += _strings(name.get("suffix"))
    for code in codes:
        role = _ROLE_BY_QUALIFICATION.get(code.upper().replace(".", ""))
        if role is not None:
            return role
    return None


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
