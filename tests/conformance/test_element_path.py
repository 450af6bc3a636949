"""Element paths: parsing, and walking resource JSON with list and choice traversal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fhirbridge.conformance.path import ElementPath, InvalidElementPath, is_present, resolve

LoadResource = Callable[[str], dict[str, Any]]


def test_a_dotted_path_parses_into_its_segments() -> None:
    assert ElementPath.parse("output.type.coding").segments == ("output", "type", "coding")


def test_a_parsed_path_renders_as_written() -> None:
    assert str(ElementPath.parse("occurrence[x]")) == "occurrence[x]"


@pytest.mark.parametrize(
    "text",
    ["", "category.where(code='x')", "Category", "category..coding", "category.coding[0]"],
)
def test_anything_but_element_names_is_rejected(text: str) -> None:
    with pytest.raises(InvalidElementPath):
        ElementPath.parse(text)


def test_resolving_walks_through_every_list_on_the_way(resource: LoadResource) -> None:
    careplan = resource("careplan-us-core.json")

    codings = resolve(careplan, ElementPath.parse("category.coding"))

    assert codings == [
        {
            "system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
            "code": "assess-plan",
        }
    ]


def test_resolving_reaches_into_backbone_elements(resource: LoadResource) -> None:
    goal = resource("goal-us-core.json")

    assert resolve(goal, ElementPath.parse("target.dueDate")) == ["2025-09-01"]


def test_a_choice_path_matches_the_typed_variant_present(resource: LoadResource) -> None:
    request = resource("servicerequest-sdoh.json")

    assert resolve(request, ElementPath.parse("occurrence[x]")) == [
        {"start": "2025-03-04", "end": "2025-04-04"}
    ]


def test_a_choice_path_does_not_match_other_elements_sharing_the_prefix() -> None:
    node = {"valueString": "a", "values": ["b"], "value": "c"}

    assert resolve(node, ElementPath.parse("value[x]")) == ["a"]


def test_a_missing_element_resolves_to_nothing(resource: LoadResource) -> None:
    careplan = resource("careplan-minimal.json")

    assert resolve(careplan, ElementPath.parse("period.start")) == []


def test_empty_strings_lists_and_objects_count_as_absent() -> None:
    node = {"category": [], "status": "", "period": {}, "note": [{}, {"text": "x"}]}

    assert resolve(node, ElementPath.parse("category")) == []
    assert resolve(node, ElementPath.parse("status")) == []
    assert resolve(node, ElementPath.parse("period")) == []
    assert resolve(node, ElementPath.parse("note")) == [{"text": "x"}]


@pytest.mark.parametrize(
    ("value", "present"), [(False, True), (0, True), ("", False), (None, False)]
)
def test_false_and_zero_are_values_but_empty_is_not(value: object, present: bool) -> None:
    assert is_present(value) is present
