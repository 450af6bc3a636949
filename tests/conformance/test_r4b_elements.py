"""Element paths resolved against the R4B models, as the profile loader uses them."""

from __future__ import annotations

import pytest
from fhir.resources.R4B import fhirtypes, get_fhir_model_class

from fhirbridge.conformance.elements import UnknownElement, element_types, is_resource_type
from fhirbridge.conformance.path import ElementPath
from fhirbridge.conformance.resource_types import R4B_RESOURCE_TYPES


def types_of(resource_type: str, path: str) -> frozenset[str]:
    return element_types(resource_type, ElementPath.parse(path))


def test_a_complex_element_reports_its_datatype() -> None:
    assert types_of("CarePlan", "category.coding") == {"Coding"}


def test_a_backbone_element_is_walked_into() -> None:
    assert types_of("Task", "output.type.coding") == {"Coding"}
    assert types_of("Goal", "target.dueDate") == {"date"}


def test_a_choice_element_stands_for_all_its_typed_variants() -> None:
    assert types_of("ServiceRequest", "occurrence[x]") == {"dateTime", "Period", "Timing"}


def test_a_typed_variant_can_be_named_directly() -> None:
    assert types_of("ChargeItem", "occurrencePeriod.end") == {"dateTime"}


def test_elements_are_named_by_their_json_name_not_the_python_field() -> None:
    assert types_of("Encounter", "class") == {"Coding"}


def test_an_element_the_resource_lacks_is_unknown() -> None:
    with pytest.raises(UnknownElement, match="CarePlan has no element 'categry'"):
        types_of("CarePlan", "categry")


def test_a_primitive_has_no_child_elements() -> None:
    with pytest.raises(UnknownElement, match="primitive"):
        types_of("CarePlan", "status.coding")


def test_a_datatype_is_not_a_resource_type() -> None:
    assert is_resource_type("Consent")
    assert not is_resource_type("Coding")
    assert not is_resource_type("CarePlot")


def test_the_resource_type_list_is_what_the_models_say() -> None:
    # Resources, unlike datatypes and backbone elements, all inherit implicitRules.
    names = [name.removesuffix("Type") for name in dir(fhirtypes) if name.endswith("Type")]
    resources = set()
    for name in names:
        try:
            model = get_fhir_model_class(name)
        except ValueError:
            continue
        if "implicitRules" in getattr(model, "model_fields", {}):
            resources.add(name)

    assert resources == R4B_RESOURCE_TYPES
