"""What a mapping needs to know beyond the record itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fhirbridge.mapping.codes import Terminology

__all__ = ["MappingContext", "MappingError", "MissingReference", "References"]


class MappingError(ValueError):
    """A record cannot be mapped; names the resource, the element and the reason."""

    def __init__(self, resource: str, element: str, reason: str) -> None:
        self.resource = resource
        self.element = element
        self.reason = reason
        super().__init__(f"{resource}.{element}: {reason}")


class MissingReference(LookupError):
    """The target exists locally but has no reference yet (not pushed).

    The engine leaves such a reference out; whoever resolves references decides whether the
    resource may go without it for now and be completed later.
    """


class References(Protocol):
    """Turns local ids into FHIR references and back.

    Patients and staff resolve to the EHR's Patient and Practitioner; our own records resolve to
    their server ids once pushed, or to ``urn:uuid:`` placeholders inside a transaction.
    """

    def reference(self, concept: str, local_id: str) -> str: ...

    def local_id(self, concept: str, reference: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class MappingContext:
    identifier_system: str
    references: References
    terminology: Terminology
