"""The demo caseload maps to the reviewed FHIR JSON under fixtures/golden/demo, and back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhirbridge.conformance import Severity, check
from tests.mapping.support import (
    GOLDEN,
    demo_context,
    demo_records,
    golden_path,
    map_back,
    mappings,
)

CASES = [
    pytest.param(concept, record, mapping, id=golden_path(mapping, record).stem)
    for concept, record in demo_records()
    for mapping in mappings().for_concept(concept)
]


def _parsed(resource_type: str, data: dict[str, Any]) -> dict[str, Any]:
    model = get_fhir_model_class(resource_type).model_validate(data)
    result: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return result


@pytest.mark.parametrize(("concept", "record", "mapping"), CASES)
def test_record_maps_to_its_golden_resource(concept: str, record: Any, mapping: Any) -> None:
    expected = json.loads(golden_path(mapping, record).read_text())

    produced = mapping.to_fhir(record, demo_context())

    assert _parsed(mapping.resource, produced) == _parsed(mapping.resource, expected)


@pytest.mark.parametrize(("concept", "record", "mapping"), CASES)
def test_golden_resource_maps_back_to_the_record(concept: str, record: Any, mapping: Any) -> None:
    resources = {
        m.resource: json.loads(golden_path(m, record).read_text())
        for m in mappings().for_concept(concept)
    }

    back = map_back(concept, resources, demo_context())

    if concept == "time_entry":
        assert back.notes is None  # notes never leave the practice
        back.notes = record.notes
    assert back == record


def test_every_golden_file_belongs_to_a_demo_record() -> None:
    expected = {path.name for _, _, path in _golden_files()}

    assert {p.name for p in GOLDEN.glob("*.json")} == expected


def test_demo_time_entry_notes_are_not_in_any_golden_file() -> None:
    notes = [r.notes for c, r in demo_records() if c == "time_entry" and r.notes]

    assert notes
    for path in GOLDEN.glob("*.json"):
        text = path.read_text()
        assert all(note not in text for note in notes), path.name


def _golden_files() -> list[tuple[str, Any, Any]]:
    return [
        (concept, record, golden_path(mapping, record))
        for concept, record in demo_records()
        for mapping in mappings().for_concept(concept)
    ]


@pytest.mark.parametrize(("concept", "record", "mapping"), CASES)
def test_golden_resource_passes_r4b_validation_and_profile_rules(
    concept: str, record: Any, mapping: Any
) -> None:
    resource = json.loads(golden_path(mapping, record).read_text())

    errors = [f for f in check(resource) if f.severity is Severity.ERROR]

    assert errors == []
    if mapping.profile:
        assert mapping.profile in resource["meta"]["profile"]
