"""R4B model validation of whole resources, each repeated element validated once.

fhir.resources validates a resource by building a model for every element in it, in Python,
which made it the largest cost of a push. The resources of one batch repeat many elements
verbatim (the patient's reference in each of a patient's resources, the care manager, codings,
extensions, profile claims). Validating an element depends on nothing but its JSON and its type
(the models carry no context), and a field given an instance of its own model class takes it
as it is: so an element already validated is handed to the next resource's model as that
instance. Every resource is still validated whole, with the same errors; an element is only
remembered once it passed, so a refused element is reported wherever it recurs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel

from fhirbridge.conformance.elements import DatatypeField, datatype_fields

__all__ = ["ModelValidator"]

# (model class, repr of the element's JSON): repr tells JSON values apart exactly, types included
# (1, 1.0, True and "1" differ), and costs far less than validating.
_Key = tuple[type[BaseModel], str]
# Where a freshly validated element sits: (JSON name, index in its list or None, key).
_Fresh = tuple[str, int | None, _Key]


class ModelValidator:
    """Validates resources against their R4B model; safe to share between threads.

    At most ``remembered`` elements are kept, the least recently used dropped first: a few MB
    at most, and enough to span a push batch, within which the repeats occur.
    """

    def __init__(self, *, remembered: int = 2048) -> None:
        self._remembered = remembered
        self._known: OrderedDict[_Key, BaseModel] = OrderedDict()
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
        if known is None:
            fresh.append((name, index, key))
            return value
        self._known.move_to_end(key)
        return known

    def _remember(
        self, validated: BaseModel, fields: Mapping[str, DatatypeField], fresh: list[_Fresh]
    ) -> None:
        with self._lock:
            for name, index, key in fresh:
                element = getattr(validated, fields[name].attribute, None)
                if index is not None:
                    element = element[index] if isinstance(element, list) else None
                if type(element) is not key[0]:
                    continue  # not the element's own model: nothing to hand on
                self._known[key] = element
                if len(self._known) > self._remembered:
                    self._known.popitem(last=False)
