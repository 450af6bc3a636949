"""Read a discharge Encounter of another system (``mappings/discharge.yaml``).

``DischargeRules.read(resource)`` answers a ``Discharge`` (the domain's words: who, when, from
which stay, to where) or a ``NotADischarge`` with the reason, counted by callers like the
inbound adoption rules' skips. The rules file is checked at start-up with ``file:line`` errors:
code-system aliases must be in ``codesystems.yaml`` and settings must be ``DischargeSetting``
values.

The identity of a discharge is its server id (``Encounter/123``); an Encounter without one (a
Bulk file line, a notification carrying a resource without id) is identified by its first
identifier (``system|value``). Opening a period is idempotent on that key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fhirbridge.datafiles import DataFileError, parse_model, read_yaml
from fhirbridge.domain.transitional_care import Discharge, DischargeSetting
from fhirbridge.mapping.codes import Terminology

__all__ = [
    "DISCHARGE_FILE",
    "DischargeRules",
    "NotADischarge",
    "discharge_key",
    "load_discharge_rules",
]

DISCHARGE_FILE = "discharge.yaml"


class _DischargeFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    resource: Literal["Encounter"]
    classes: dict[str, dict[str, DischargeSetting]] = Field(min_length=1)
    community_dispositions: dict[str, list[str]] = Field(min_length=1)
    missing_disposition: Literal["skip", "qualify"] = "skip"


@dataclass(frozen=True, slots=True)
class NotADischarge:
    reason: str  # "Encounter: <why>", the key callers count by


@dataclass(frozen=True, slots=True)
class DischargeRules:
    classes: Mapping[tuple[str, str], DischargeSetting]  # (system URI, code) -> stay
    community: frozenset[tuple[str, str]]  # (system URI, code)
    missing_disposition_qualifies: bool = False

    def read(self, resource: Mapping[str, Any]) -> Discharge | NotADischarge:
        """The qualifying discharge ``resource`` describes, or why it is none."""
        if resource.get("resourceType") != "Encounter":
            return NotADischarge(f"{resource.get('resourceType')}: not an Encounter")
        if resource.get("status") != "finished":
            return NotADischarge(f"Encounter: status {resource.get('status')}, not finished")
        setting = self._setting(resource.get("class"))
        if setting is None:
            code = _code(resource.get("class")) or "none"
            return NotADischarge(f"Encounter: class {code} is not a qualifying stay")
        period = resource.get("period")
        end = period.get("end") if isinstance(period, Mapping) else None
        discharged_at = _instant(end)
        if discharged_at is None:
            return NotADischarge("Encounter: no period.end (discharge time)")
        subject = resource.get("subject")
        patient = subject.get("reference") if isinstance(subject, Mapping) else None
        if not isinstance(patient, str) or patient.split("/")[-2:-1] != ["Patient"]:
            return NotADischarge("Encounter: subject is not a Patient reference")
        key = discharge_key(resource)
        if key is None:
            return NotADischarge("Encounter: neither an id nor an identifier")
        hospitalization = resource.get("hospitalization")
        disposition = (
            hospitalization.get("dischargeDisposition")
            if isinstance(hospitalization, Mapping)
            else None
        )
        codings = list(_codings(disposition))
        if not codings and not self.missing_disposition_qualifies:
            return NotADischarge("Encounter: no discharge disposition")
        if codings and not any(c in self.community for c in codings):
            shown = ", ".join(code for _, code in codings)
            return NotADischarge(
                f"Encounter: discharge disposition {shown} is not to the community"
            )
        return Discharge(
            discharge_key=key,
            patient_reference="/".join(patient.split("/")[-2:]),
            discharged_at=discharged_at,
            setting=setting,
            disposition=codings[0][1] if codings else None,
        )

    def _setting(self, value: Any) -> DischargeSetting | None:
        for coding in _codings(value):
            if coding in self.classes:
                return self.classes[coding]
        return None


def discharge_key(resource: Mapping[str, Any]) -> str | None:
    server_id = resource.get("id")
    if isinstance(server_id, str) and server_id:
        return f"Encounter/{server_id}"
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, Mapping) and identifier.get("value"):
            return f"{identifier.get('system', '')}|{identifier['value']}"
    return None


def load_discharge_rules(root: Path, terminology: Terminology) -> DischargeRules:
    """Read and check ``<root>/discharge.yaml``."""
    path = root / DISCHARGE_FILE
    document = read_yaml(path)
    spec = parse_model(_DischargeFile, document)

    def uri(section: str, alias: str) -> str:
        if alias not in terminology.systems:
            line = document.line_of([section, alias])
            raise DataFileError(path, line, f"unknown code system '{alias}'")
        return terminology.uri(alias)

    classes = {
        (uri("classes", alias), code): setting
        for alias, codes in spec.classes.items()
        for code, setting in codes.items()
    }
    community = frozenset(
        (uri("community_dispositions", alias), code)
        for alias, codes in spec.community_dispositions.items()
        for code in codes
    )
    return DischargeRules(
        classes=classes,
        community=community,
        missing_disposition_qualifies=spec.missing_disposition == "qualify",
    )


def _code(value: Any) -> str | None:
    return next((code for _, code in _codings(value)), None)


def _codings(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, Mapping):
        return []
    codings = value.get("coding") if "coding" in value else [value]
    found = []
    for coding in codings or []:
        if isinstance(coding, Mapping):
            system, code = coding.get("system"), coding.get("code")
            if isinstance(system, str) and isinstance(code, str):
                found.append((system, code))
    return found


def _instant(value: Any) -> datetime | None:
    """A FHIR dateTime with a time zone (a date alone, or a local time, is not a discharge
    instant: which day it was depends on the zone)."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)
