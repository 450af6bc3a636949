"""The schema of mapping files: what a file may say, checked before anything else reads it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodingSpec(_Strict):
    system: str  # alias from codesystems.yaml
    code: str
    display: str | None = None


class CodeSystemsFile(_Strict):
    systems: dict[str, str]
    extensions: dict[str, str] = Field(default_factory=dict)


class CodeTableFile(_Strict):
    """Translates one domain enum to FHIR codes (a plain code, or codings)."""

    table: str
    enum: str  # domain enum class name; every member must be covered
    kind: Literal["code", "codings"]
    entries: dict[str, str | list[CodingSpec]]


TransformName = Literal[
    "identifier",
    "string",
    "boolean",
    "date",
    "datetime",
    "decimal",
    "integer",
    "code",
    "coding",
    "concept",
    "reference",
    "extension",
    "narrative",
    "quantity",
    "minutes",
    "task_output",
    "record",
]


class FieldRule(_Strict):
    """One domain field and the FHIR element it lives in."""

    field: str  # domain attribute, dotted for nested values ("target.measure")
    element: str  # FHIR element path: "description", "target[0].dueDate", "activity[*].reference"
    transform: TransformName = "string"
    table: str | None = None  # code table for enums
    systems: list[str] | None = None  # code systems a domain Code may use here
    concept: str | None = None  # reference: the domain concept the local id belongs to
    target: str | None = None  # reference: FHIR type of a raw (externally owned) reference
    text_from: str | None = None  # concept: a second domain field holding the text
    display_from: str | None = None  # reference: a second domain field holding the display
    unit_from: str | None = None  # quantity: a second domain field holding the UCUM unit
    url: str | None = None  # extension: alias from codesystems.yaml
    value: Literal["code", "boolean", "reference", "concept", "date"] | None = None
    # Who decides this element once the resource exists. "remote" fields (a referral Task's
    # status after "requested" belongs to the performer) are applied locally when they change
    # on the server; a server change to a field we own that we also changed is a conflict.
    owner: Literal["fhirbridge", "remote"] = "fhirbridge"
    # record: each item of a list field is a small record of its own (a questionnaire answer:
    # a linkId and the answer); these rules map its fields into the element's children.
    fields: list[FieldRule] | None = None


class FixedRule(_Strict):
    """An element whose value is fixed by the profile; set when the resource lacks it."""

    element: str
    value: Any = None
    coding: CodingSpec | None = None  # for CodeableConcept lists: ensure this coding is present


class ResourceMappingFile(_Strict):
    concept: str  # domain concept (see fhirbridge.mapping.concepts)
    resource: str  # FHIR resource type
    profile: str | None = None
    identifier_prefix: str  # business identifier value = "<prefix>/<local id>"
    # The resource other records reference this concept by; exactly one per concept.
    primary: bool = True
    # Concepts whose resources must be on the server before this one is pushed.
    after: list[str] = Field(default_factory=list)
    fixed: list[FixedRule] = Field(default_factory=list)
    fields: list[FieldRule]


class AdoptionCondition(_Strict):
    """One way a foreign resource shows it belongs to care management (``mappings/inbound.yaml``).

    ``codes``: the element (a CodeableConcept, or a list of them) carries one of these codes,
    by code-system alias. ``systems``: it carries any code of these systems. ``refers_to``: the
    element (a Reference, or a list of them) points at a record of that concept known here.
    """

    element: str
    codes: dict[str, list[str]] | None = None
    systems: list[str] | None = None
    refers_to: str | None = None


class AdoptionRule(_Strict):
    """When a resource of another system becomes a record of concept ``as``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    resource: str
    as_: str = Field(alias="as")
    always: bool = False
    when_any: list[AdoptionCondition] = Field(default_factory=list)
    otherwise: str | None = None  # the reason counted for a resource no condition accepts


class InboundFile(_Strict):
    adopt: list[AdoptionRule]
