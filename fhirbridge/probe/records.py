"""The test records the probe writes to a server and removes again.

Rules:

- The care-management records come from ``fixtures/probe/records.yaml`` (domain records, in the
  caseload format) and are mapped to FHIR by the mapping engine, exactly as the sync maps them:
  what the probe writes is what fhirbridge will write. The probe patient comes from
  ``fixtures/probe/patient.json`` (the EHR owns Patients; there is no mapping for them).
- Every record carries the probe identifier system (value ``<prefix>/<run>-<purpose>``, so each
  run and each purpose gets its own business identifier) and a ``meta.tag`` naming the run, so
  probe records are never mistaken for real ones and can be found again.
- A record references only the probe patient (a server enforcing referential integrity accepts
  it) and whatever the caller binds (``bound``: a CarePlan's goal inside a transaction); every
  other reference is left out, as the engine leaves out a reference whose target is not pushed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.jsondata import clone
from fhirbridge.mapping.concepts import concept_of
from fhirbridge.mapping.context import MappingContext, MissingReference
from fhirbridge.mapping.loader import Mappings, load_mappings

__all__ = [
    "PROBE_FIXTURES",
    "PROBE_IDENTIFIER_SYSTEM",
    "PROBE_TAG_SYSTEM",
    "ProbeRecord",
    "ProbeRecords",
    "identifiers_of",
]

PROBE_IDENTIFIER_SYSTEM = "urn:fhirbridge:probe"
PROBE_TAG_SYSTEM = "https://fhirbridge.dev/fhir/CodeSystem/probe-run"
PROBE_FIXTURES = PROJECT_ROOT / "fixtures" / "probe"


@dataclass(frozen=True)
class ProbeRecord:
    """One resource to write, with the business identifier that finds it again."""

    resource: dict[str, Any]
    identifier: dict[str, str]

    @property
    def type(self) -> str:
        return str(self.resource["resourceType"])

    @property
    def criteria(self) -> str:
        """The identifier search (``identifier=system|value``) matching only this record."""
        return f"identifier={self.identifier['system']}|{self.identifier['value']}"


class _ProbeReferences:
    """The probe patient, and what the caller bound; everything else is left out."""

    def __init__(self, patient: str, bound: Mapping[str, str]) -> None:
        self._patient = patient
        self._bound = bound

    def reference(self, concept: str, local_id: str) -> str:
        if concept == "patient":
            return self._patient
        try:
            return self._bound[concept]
        except KeyError:
            raise MissingReference(f"{concept}/{local_id}") from None

    def local_id(self, concept: str, reference: str) -> str | None:
        if concept == "patient" and reference == self._patient:
            return "probe-patient"
        if self._bound.get(concept) == reference:
            return concept
        return None


class ProbeRecords:
    """The probe's records, one care-management record per resource type fhirbridge writes."""

    def __init__(
        self,
        mappings: Mappings,
        caseload: Caseload,
        patient: Mapping[str, Any],
        *,
        identifier_system: str = PROBE_IDENTIFIER_SYSTEM,
    ) -> None:
        self._mappings = mappings
        self._patient = dict(patient)
        self.identifier_system = identifier_system
        by_type: dict[str, tuple[str, Any]] = {}
        for record in caseload.care_records():
            concept = concept_of(record)
            by_type.setdefault(mappings.plan.primary(concept), (concept, record))
        # Push order: a type comes after the types its records may reference.
        self._by_type = dict(
            sorted(by_type.items(), key=lambda item: mappings.plan.rank(item[1][0]))
        )

    @classmethod
    def load(
        cls,
        mappings: Mappings | None = None,
        *,
        folder: Path = PROBE_FIXTURES,
        identifier_system: str = PROBE_IDENTIFIER_SYSTEM,
    ) -> ProbeRecords:
        """The records under ``folder`` (``records.yaml``, ``patient.json``), mapped with
        ``mappings`` (the project's own mapping files when not given)."""
        return cls(
            mappings if mappings is not None else _project_mappings(),
            load_caseload(folder / "records.yaml"),
            json.loads((folder / "patient.json").read_text(encoding="utf-8")),
            identifier_system=identifier_system,
        )

    @property
    def types(self) -> tuple[str, ...]:
        """The resource types there is a record for, in push order."""
        return tuple(self._by_type)

    def concept(self, rtype: str) -> str:
        return self._by_type[rtype][0]

    def record(
        self,
        rtype: str,
        *,
        run_id: str,
        purpose: str,
        patient: str,
        bound: Mapping[str, str] | None = None,
    ) -> ProbeRecord:
        """The ``rtype`` record for one purpose of one run (``main``, ``conditional``, ...).

        ``bound`` maps a concept to the reference its fixture record is known by, e.g.
        ``{"goal": "urn:uuid:..."}`` puts the goal into a CarePlan.
        """
        concept, template = self._by_type[rtype]
        mapping = self._mappings.get(concept, rtype)
        if rtype == "CareTeam":
            # A participant must name its member; the patient is a member US Core allows, and
            # the only one a server that checks references has.
            bound = {"member": patient, **(bound or {})}
        record = dataclasses.replace(template, id=f"{run_id}-{purpose}")
        context = MappingContext(
            identifier_system=self.identifier_system,
            references=_ProbeReferences(patient, bound or {}),
            terminology=self._mappings.terminology,
        )
        resource = mapping.to_fhir(record, context)
        _tag(resource, run_id)
        identifier = next(
            i for i in identifiers_of(resource) if i.get("system") == self.identifier_system
        )
        return ProbeRecord(resource, {"system": identifier["system"], "value": identifier["value"]})

    def patient(self, *, run_id: str, purpose: str = "patient") -> ProbeRecord:
        """The probe patient, when the user names no existing one."""
        identifier = {"system": self.identifier_system, "value": f"patient/{run_id}-{purpose}"}
        resource = {**clone(self._patient), "identifier": [identifier]}
        _tag(resource, run_id)
        return ProbeRecord(resource, identifier)


def identifiers_of(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A resource's identifiers as a list: QuestionnaireResponse has one (0..1), not a list."""
    found = resource.get("identifier")
    if isinstance(found, dict):
        return [found]
    return [i for i in found or [] if isinstance(i, dict)]


@functools.cache
def _project_mappings() -> Mappings:
    return load_mappings(PROJECT_ROOT / "mappings")


def _tag(resource: dict[str, Any], run_id: str) -> None:
    tags = resource.setdefault("meta", {}).setdefault("tag", [])
    tags.append({"system": PROBE_TAG_SYSTEM, "code": run_id})
