"""A contained or nested resource with no R4B type is refused with a reason, never a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhirbridge.conformance import NonConformantResource, ensure_conformant

BROKEN = Path(__file__).resolve().parents[2] / "fixtures" / "conformance" / "broken"


def _resource(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((BROKEN / name).read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("careplan-contained-empty-type.json", "'' is not an R4B resource type"),
        ("careplan-contained-unknown-type.json", "'CarePlot' is not an R4B resource type"),
        ("careplan-contained-no-type.json", "a contained resource needs a resourceType"),
    ],
)
def test_a_contained_resource_without_an_r4b_type_is_refused_naming_the_entry(
    name: str, reason: str
) -> None:
    with pytest.raises(NonConformantResource) as refused:
        ensure_conformant(_resource(name))

    assert f"contained[0].resourceType [r4b:resource-type]: {reason}" in str(refused.value)


def test_a_bundle_entry_of_an_unknown_type_is_refused_rather_than_crashing() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "CarePlot", "id": "1"}}],
    }

    with pytest.raises(NonConformantResource) as refused:
        ensure_conformant(bundle)

    assert "a nested resource's type is not an R4B resource type" in str(refused.value)
