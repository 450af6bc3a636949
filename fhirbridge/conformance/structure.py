"""R4B model validation of whole resources, each repeated element validated once.

fhir.resources validates a resource by building a model for every element in it, in Python,
which made it the largest cost of a push. The resources of one batch repeat many elements
verbatim (the patient's reference in each of a patient's resources, the care manager, codings,
extensions, profile claims). Validating an element depends on nothing but its JSON and its type
(the models carry no context), and a field given an instance of its own model class takes it
as it is: so an element already validated is handed to the next resource's model as that
instance. Every resource is still validated whole, with the same errors; an element is only
remembered once it passed, so a refused element is reported wherever it recurs.

Most of the rest are flat elements that differ only in their values: the identifier, the
references between the resources of a transaction, periods. Whether such an element passes
is decided by its keys and their JSON types (which fields are present, missing or unknown: the
models' own checks look at nothing else) and by each value passing its field's type. So once
an element with the same keys and value types has passed, a new one passes exactly when each
of its values passes its field's type, which is checked on its own (the same annotation, so
the same validation); the resource's model is then handed the element that passed before, an
instance of the same class, which it takes as it is. Whenever a value does not pass, or the
keys are new, the element is validated with the resource as before, so every error is the
model's own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, TypeAdapter

from fhirbridge.conformance.elements import (
    DatatypeField,
    complex_fields,
    datatype_fields,
    primitive_fields,
)

__all__ = ["ModelValidator"]

# (model class, repr of the element's JSON): repr tells JSON values apart exactly, types included
# (1, 1.0, True and "1" differ), and costs far less than validating.
_Key = tuple[type[BaseModel], str]
# An element's keys, in order, each with the JSON type of its value or the layout of the
# element(s) it holds.
_Part = type | tuple[Any, ...]
_Layout = tuple[tuple[str, _Part], ...]
_Shape = tuple[type[BaseModel], _Layout]
# Where a freshly validated element sits: (JSON name, index in its list or None, key, shape).
_Fresh = tuple[str, int | None, _Key, _Shape | None]

_SCALARS = frozenset({str, int, float, bool})
# Model settings that do not change how a field's value is validated; under any other setting
# a value checked on its own might not be checked as the model checks it, so the shortcut is off.
_NEUTRAL_CONFIG = frozenset({"extra", "validate_assignment", "populate_by_name"})
_MAX_SHAPES = 1024


class ModelValidator:
    """Validates resources against their R4B model; safe to share between threads.

    At most ``remembered`` elements are kept, the least recently used dropped first: a few MB
    at most, and enough to span a push batch, within which the repeats occur.
    """

    def __init__(self, *, remembered: int = 2048) -> None:
        self._remembered = remembered
        self._known: OrderedDict[_Key, BaseModel] = OrderedDict()
        # One element that passed for each flat shape seen.
        self._shapes: dict[_Shape, BaseModel] = {}
        self._lock = threading.Lock()

    def validate(self, resource_type: str, resource: Mapping[str, Any]) -> None:
        """Raise pydantic's ValidationError when the R4B model refuses ``resource``."""
        fields = datatype_fields(resource_type)
        data = dict(resource)
        fresh: list[_Fresh] = []
        with self._lock:
            for name, value in resource.items():
                field = fields.get(name)
                if field is None:
                    continue
                if field.is_list and isinstance(value, list):
                    data[name] = [
                        self._known_or(item, field, name, index, fresh)
                        for index, item in enumerate(value)
                    ]
                elif not field.is_list and isinstance(value, dict):
                    data[name] = self._known_or(value, field, name, None, fresh)
        validated = get_fhir_model_class(resource_type).model_validate(data)
        if fresh:
            self._remember(validated, fields, fresh)

    def _known_or(
        self, value: Any, field: DatatypeField, name: str, index: int | None, fresh: list[_Fresh]
    ) -> Any:
        if not isinstance(value, dict):
            return value
        key = (field.model, repr(value))
        known = self._known.get(key)
        if known is not None:
            self._known.move_to_end(key)
            return known
        shape = _shape(field.model, value)
        if shape is not None:
            alike = self._shapes.get(shape)
            if alike is not None and _values_pass(field.model, value):
                return alike
        fresh.append((name, index, key, shape))
        return value

    def _remember(
        self, validated: BaseModel, fields: Mapping[str, DatatypeField], fresh: list[_Fresh]
    ) -> None:
        with self._lock:
            for name, index, key, shape in fresh:
                element = getattr(validated, fields[name].attribute, None)
                if index is not None:
                    element = element[index] if isinstance(element, list) else None
                if type(element) is not key[0]:
                    continue  # not the element's own model: nothing to hand on
                self._known[key] = element
                if len(self._known) > self._remembered:
                    self._known.popitem(last=False)
                if shape is not None and len(self._shapes) < _MAX_SHAPES:
                    self._shapes.setdefault(shape, element)


def _shape(model: type[BaseModel], value: dict[str, Any]) -> _Shape | None:
    layout = _layout(model, value)
    return None if layout is None else (model, layout)


def _layout(model: type[BaseModel], value: dict[str, Any]) -> _Layout | None:
    """Keys and JSON types of an element, the elements within it laid out the same way; None
    where a value is neither a scalar of a primitive field nor an element of a complex one."""
    if _value_checks(model) is None:
        return None
    primitives = primitive_fields(model)
    complexes = complex_fields(model)
    parts: list[tuple[str, _Part]] = []
    for name, item in value.items():
        kind = type(item)
        if kind in _SCALARS and name in primitives:
            parts.append((name, kind))
            continue
        field = complexes.get(name)
        if field is None:
            return None
        if field.is_list and kind is list:
            items: list[_Layout] = []
            for entry in item:
                inner = _layout(field.model, entry) if type(entry) is dict else None
                if inner is None:
                    return None
                items.append(inner)
            parts.append((name, tuple(items)))
        elif not field.is_list and kind is dict:
            inner = _layout(field.model, item)
            if inner is None:
                return None
            parts.append((name, inner))
        else:
            return None
    return tuple(parts)


def _values_pass(model: type[BaseModel], value: dict[str, Any]) -> bool:
    """Every primitive value in the element (laid out by ``_layout``) passes its field's type."""
    checks = _value_checks(model)
    if checks is None:
        return False
    complexes = complex_fields(model)
    try:
        for name, item in value.items():
            check = checks.get(name)
            if check is not None and type(item) in _SCALARS:
                check(item)
            elif type(item) is list:
                if not all(_values_pass(complexes[name].model, entry) for entry in item):
                    return False
            elif not _values_pass(complexes[name].model, item):
                return False
    except Exception:  # any failure: the element is validated with the resource, as before
        return False
    return True


@cache
def _value_checks(model: type[BaseModel]) -> dict[str, Callable[[Any], Any]] | None:
    """Each primitive field's own validation, or None where a value might validate differently
    inside the model: settings that change validation, or a JSON name that is also another
    field's attribute name (which field takes the value would then be pydantic's choice)."""
    if not set(model.model_config) <= _NEUTRAL_CONFIG:
        return None
    fields = model.model_fields
    if any(info.alias in fields and info.alias != name for name, info in fields.items()):
        return None
    return {
        name: TypeAdapter(annotation).validator.validate_python
        for name, annotation in primitive_fields(model).items()
    }
