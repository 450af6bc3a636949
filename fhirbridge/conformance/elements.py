"""Which element paths exist, and what type they end in, according to the R4B models.

Profile files name elements by path; a typo there would silently make a rule check nothing, so
the loader asks this module to resolve every path against ``fhir.resources.R4B`` first.
The models expose each element as a pydantic field whose alias is the JSON name and whose
annotation wraps either a primitive (``Annotated[str, Code()]``) or a placeholder class named
``abc.<Type>Type`` standing for the complex type ``<Type>``.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from fhirbridge.conformance.path import CHOICE_SUFFIX, ElementPath
from fhirbridge.conformance.resource_types import R4B_RESOURCE_TYPES

__all__ = [
    "DatatypeField",
    "UnknownElement",
    "complex_fields",
    "datatype_fields",
    "element_types",
    "is_resource_type",
    "primitive_fields",
]

_PLACEHOLDER_SUFFIX = "Type"
_PYTHON_PRIMITIVES = {bool: "boolean", int: "integer", str: "string"}


class UnknownElement(ValueError):
    """A path that does not name an element of the resource type."""

    def __init__(self, resource_type: str, path: ElementPath, *, reason: str) -> None:
        self.resource_type = resource_type
        self.path = path
        self.reason = reason
        super().__init__(f"{resource_type}.{path}: {reason}")


@dataclass(frozen=True, slots=True)
class _Element:
    json_name: str
    type_name: str  # "Coding", "Reference", "GoalTarget" or a primitive like "code", "dateTime"
    model: type[BaseModel] | None  # set for complex types, whose children can be walked
    choice_of: str | None  # "occurrence" for occurrencePeriod


@dataclass(frozen=True, slots=True)
class DatatypeField:
    """A resource element whose type is a complex datatype or a backbone element."""

    attribute: str  # the model's attribute name (the JSON name may be an alias)
    model: type[BaseModel]
    is_list: bool


def is_resource_type(name: str) -> bool:
    return name in R4B_RESOURCE_TYPES


def element_types(resource_type: str, path: ElementPath) -> frozenset[str]:
    """Type names the element at ``path`` can have (several for a trailing choice ``[x]``).

    Raises UnknownElement when a segment names no element of its parent.
    """
    root = _model(resource_type)
    if root is None or not is_resource_type(resource_type):
        raise UnknownElement(
            resource_type, path, reason=f"{resource_type!r} is not an R4B resource"
        )
    parents: list[tuple[str, type[BaseModel]]] = [(resource_type, root)]
    found: list[_Element] = []
    for depth, segment in enumerate(path.segments):
        found = [element for _, model in parents for element in _lookup(model, segment)]
        if not found:
            where = " or ".join(sorted({name for name, _ in parents}))
            raise UnknownElement(resource_type, path, reason=f"{where} has no element {segment!r}")
        if depth < len(path.segments) - 1:
            parents = [(e.type_name, e.model) for e in found if e.model is not None]
            if not parents:
                types_ = ", ".join(sorted({e.type_name for e in found}))
                raise UnknownElement(
                    resource_type,
                    path,
                    reason=f"{segment!r} is a primitive ({types_}) and has no child elements",
                )
    return frozenset(element.type_name for element in found)


@cache
def datatype_fields(resource_type: str) -> dict[str, DatatypeField]:
    """JSON name -> field, for the top-level elements of ``resource_type`` whose type is a
    complex datatype or backbone element (contained resources are left out)."""
    model = _model(resource_type)
    return {} if model is None else complex_fields(model)


@cache
def complex_fields(model: type[BaseModel]) -> dict[str, DatatypeField]:
    """JSON name -> field, for the elements of ``model`` whose type is a complex datatype or
    backbone element (contained resources are left out)."""
    fields: dict[str, DatatypeField] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        type_name, child = _field_type(info)
        if child is None or is_resource_type(type_name):
            continue
        fields[info.alias or name] = DatatypeField(name, child, _is_list(info.annotation))
    return fields


@cache
def primitive_fields(model: type[BaseModel]) -> dict[str, Any]:
    """JSON name -> annotation, for the elements of ``model`` that hold one primitive value
    (``Reference.reference``, ``Period.start``): the annotation alone says how it is validated
    (no field metadata). Lists, complex types and the ``_name`` extension siblings are left out."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("element_property") or info.metadata:
            continue
        _, child = _field_type(info)
        if child is not None or _is_list(info.annotation):
            continue
        fields[info.alias or name] = info.annotation
    return fields


def _is_list(annotation: Any) -> bool:
    while True:
        origin = typing.get_origin(annotation)
        if origin is list:
            return True
        if origin not in (typing.Union, types.UnionType):
            return False
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))


def _lookup(model: type[BaseModel], segment: str) -> list[_Element]:
    elements = _elements(model)
    if segment.endswith(CHOICE_SUFFIX):
        stem = segment[: -len(CHOICE_SUFFIX)]
        return [e for e in elements.values() if e.choice_of == stem]
    element = elements.get(segment)
    return [element] if element is not None else []


@cache
def _elements(model: type[BaseModel]) -> dict[str, _Element]:
    elements: dict[str, _Element] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue  # fhir_comments and the _primitive extension siblings
        json_name = info.alias or name
        type_name, child = _field_type(info)
        stem = extra.get("one_of_many")
        choice_of = stem if isinstance(stem, str) else None
        elements[json_name] = _Element(json_name, type_name, child, choice_of)
    return elements


def _field_type(info: FieldInfo) -> tuple[str, type[BaseModel] | None]:
    annotation = _unwrap(info.annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        if metadata:
            marker = type(metadata[0]).__name__
            return marker[:1].lower() + marker[1:], None
        annotation = base
    if isinstance(annotation, type):
        if annotation in _PYTHON_PRIMITIVES:
            return _PYTHON_PRIMITIVES[annotation], None
        name = annotation.__name__
        if name.endswith(_PLACEHOLDER_SUFFIX):
            type_name = name[: -len(_PLACEHOLDER_SUFFIX)]
            return type_name, _model(type_name)
    return repr(annotation), None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] and List[...] down to the element's own type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            annotation = members[0]
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


@cache
def _model(type_name: str) -> type[BaseModel] | None:
    try:
        model = get_fhir_model_class(type_name)
    except (ValueError, KeyError):
        return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None
