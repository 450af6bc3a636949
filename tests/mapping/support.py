"""Shared pieces for mapping tests: the loaded mappings, contexts and the demo caseload."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.mapping.concepts import CONCEPTS, concept_of
from fhirbridge.mapping.context import MappingContext
from fhirbridge.mapping.engine import ResourceMapping, build_entity
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.mapping.references import StaticReferences

IDENTIFIER_SYSTEM = "urn:fhirbridge:demo"
GOLDEN = PROJECT_ROOT / "fixtures" / "golden" / "demo"


@cache
def mappings() -> Mappings:
    return load_mappings(PROJECT_ROOT / "mappings")


@cache
def demo() -> Caseload:
    return load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml")


def demo_context() -> MappingContext:
    refs = StaticReferences.of(
        demo().patients, demo().members, primary=mappings().plan.primary_resources
    )
    return MappingContext(IDENTIFIER_SYSTEM, refs, mappings().terminology)


class OpenReferences:
    """Any Patient/x or Practitioner/x is a known person with local id x (inbound tests)."""

    def reference(self, concept: str, local_id: str) -> str:
        if concept == "patient":
            return f"Patient/{local_id}"
        if concept == "member":
            return f"Practitioner/{local_id}"
        return StaticReferences(primary=mappings().plan.primary_resources).reference(
            concept, local_id
        )

    def local_id(self, concept: str, reference: str) -> str | None:
        wanted = {"patient": "Patient", "member": "Practitioner"}.get(concept)
        if wanted is None:
            return StaticReferences(primary=mappings().plan.primary_resources).local_id(
                concept, reference
            )
        kind, _, ident = reference.rpartition("/")
        return ident if kind.endswith(wanted) and ident else None


def open_context() -> MappingContext:
    return MappingContext(IDENTIFIER_SYSTEM, OpenReferences(), mappings().terminology)


def demo_records() -> Iterator[tuple[str, Any]]:
    for record in demo().care_records():
        yield concept_of(record), record


def golden_path(mapping: ResourceMapping, record: Any) -> Path:
    return GOLDEN / f"{mapping.resource}-{mapping.identifier_prefix}-{record.id}.json"


def map_back(concept: str, resources: dict[str, dict[str, Any]], ctx: MappingContext) -> Any:
    values: dict[str, Any] = {}
    for mapping in mappings().for_concept(concept):
        if mapping.resource in resources:
            values.update(mapping.from_fhir(resources[mapping.resource], ctx))
    return build_entity(CONCEPTS[concept], values, label=concept)
