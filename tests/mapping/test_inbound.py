"""Resources written by other systems map into the domain and back without loss.

Inputs: the official FHIR R4 examples (shared/fhir-examples/r4) and EHR-style resources under
fixtures/inbound (extra extensions, other identifiers, contained resources, unmapped elements).
Read -> domain -> write over the original must give the original back, plus only what we add
(our business identifier and profile, fixed values the profile requires).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import TaskStatus
from fhirbridge.mapping.context import MappingError
from fhirbridge.mapping.engine import ResourceMapping, apply_resource
from tests.mapping.support import (
    IDENTIFIER_SYSTEM,
    demo,
    demo_context,
    map_back,
    mappings,
    open_context,
)

OFFICIAL = PROJECT_ROOT / "fixtures" / "official-r4"
INBOUND = PROJECT_ROOT / "fixtures" / "inbound"
CONCEPT_OF = {
    "CarePlan": "care_plan",
    "Goal": "goal",
    "Task": "care_task",
    "Encounter": "time_entry",
    "ServiceRequest": "referral",
    "EpisodeOfCare": "enrollment",
    "Consent": "program_consent",
    "CareTeam": "patient_care_team",
}


def _files() -> list[Path]:
    official = sorted(OFFICIAL.glob("*.json"))
    return [
        path
        for path in official + sorted(INBOUND.glob("*.json"))
        if not _is_referral_task(json.loads(path.read_text()))
    ]


def _mapping_for(resource: dict[str, Any]) -> tuple[str, ResourceMapping]:
    concept = CONCEPT_OF[resource["resourceType"]]
    if resource["resourceType"] == "Task" and _is_referral_task(resource):
        concept = "referral"
    return concept, mappings().get(concept, resource["resourceType"])


def _is_referral_task(task: dict[str, Any]) -> bool:
    codings = (task.get("code") or {}).get("coding", [])
    return any(c.get("code") == "fulfill" for c in codings) and "focus" in task


def _without_our_additions(
    written: dict[str, Any], original: dict[str, Any], mapping: ResourceMapping
) -> dict[str, Any]:
    result = copy.deepcopy(written)
    ours = [
        i
        for i in result.get("identifier", [])
        if i.get("system") == IDENTIFIER_SYSTEM and i not in original.get("identifier", [])
    ]
    for identifier in ours:
        result["identifier"].remove(identifier)
    if not result.get("identifier") and "identifier" not in original:
        result.pop("identifier", None)
    profiles = result.get("meta", {}).get("profile", [])
    if mapping.profile in profiles and mapping.profile not in original.get("meta", {}).get(
        "profile", []
    ):
        profiles.remove(mapping.profile)
        if not profiles:
            del result["meta"]["profile"]
        if not result["meta"]:
            del result["meta"]
    for fixed in mapping.fixed:
        name = fixed.path.segments[0].name
        if name not in original:
            result.pop(name, None)
        elif fixed.coding is not None and result.get(name) != original.get(name):
            result[name] = [
                item for item in result[name] if fixed.coding not in item.get("coding", [])
            ]
    return result


def _normalised(resource: dict[str, Any]) -> dict[str, Any]:
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    result: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return result


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_foreign_resource_survives_read_and_write_back(path: Path) -> None:
    original = json.loads(path.read_text())
    concept, mapping = _mapping_for(original)
    ctx = open_context()

    record = map_back(concept, {mapping.resource: original}, ctx)
    written = mapping.to_fhir(record, ctx, base=original)

    assert _normalised(_without_our_additions(written, original, mapping)) == _normalised(original)


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_foreign_resource_written_back_maps_to_the_same_record(path: Path) -> None:
    original = json.loads(path.read_text())
    concept, mapping = _mapping_for(original)
    ctx = open_context()
    record = map_back(concept, {mapping.resource: original}, ctx)

    again = map_back(concept, {mapping.resource: mapping.to_fhir(record, ctx, base=original)}, ctx)

    assert again == record


def test_official_examples_are_present() -> None:
    assert len(list(OFFICIAL.glob("*.json"))) >= 30


def test_performer_update_of_a_referral_task_moves_only_the_tracker() -> None:
    referral = next(r for r in demo().referrals if r.id == "r-1001-food")
    task = json.loads((INBOUND / "task-referral-performer-update.json").read_text())
    mapping = mappings().get("referral", "Task")

    updated = apply_resource(referral, mapping, task, demo_context())

    assert updated.task_status is TaskStatus.COMPLETED
    assert updated.task_owner_reference == "Organization/cbo-foodbank-7"
    assert updated.outcome_references == ["Procedure/cbo-proc-311"]
    assert [c.code for c in updated.outcomes] == ["710925007"]
    assert (updated.status, updated.service) == (referral.status, referral.service)


def test_referral_task_written_back_keeps_the_performers_elements() -> None:
    referral = next(r for r in demo().referrals if r.id == "r-1001-food")
    task = json.loads((INBOUND / "task-referral-performer-update.json").read_text())
    mapping = mappings().get("referral", "Task")
    updated = apply_resource(referral, mapping, task, demo_context())

    written = mapping.to_fhir(updated, demo_context(), base=task)

    assert _normalised(written) == _normalised(task)


@pytest.mark.parametrize(
    ("resource", "element"),
    [
        (
            {
                "resourceType": "Goal",
                "lifecycleStatus": "done",
                "subject": {"reference": "Patient/a"},
            },
            "lifecycleStatus",
        ),
        (
            {
                "resourceType": "Goal",
                "lifecycleStatus": "active",
                "startDate": "next tuesday",
                "subject": {"reference": "Patient/a"},
            },
            "startDate",
        ),
        (
            {
                "resourceType": "Encounter",
                "status": "finished",
                "length": {"value": 3, "code": "wk"},
                "class": {"code": "VR"},
            },
            "length",
        ),
        (
            {
                "resourceType": "CarePlan",
                "status": 7,
                "intent": "plan",
                "subject": {"reference": "Patient/a"},
            },
            "status",
        ),
    ],
    ids=["unknown-status-code", "unparseable-date", "unsupported-duration-unit", "wrong-type"],
)
def test_invalid_inbound_resource_is_refused_naming_the_element(
    resource: dict[str, Any], element: str
) -> None:
    concept = CONCEPT_OF[resource["resourceType"]]
    mapping = mappings().get(concept, resource["resourceType"])

    with pytest.raises(MappingError) as raised:
        mapping.from_fhir(resource, open_context())

    assert raised.value.element == element
    assert resource["resourceType"] in str(raised.value)
