"""The schema of a profile rule file (``mappings/profiles/*.yaml``).

A file declares one profile (or one fhirbridge convention) for one resource type: when it
applies and a list of rules. Rules come from a small, closed set of kinds; each kind is a model
here with fixed fields, so nothing in a file is ever evaluated as an expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from fhirbridge.conformance.path import ElementPath

__all__ = [
    "AllowedValuesRule",
    "BindingRule",
    "CodingMatch",
    "CodingValue",
    "FixedRule",
    "Leaf",
    "MustSupportRule",
    "NarrativeRule",
    "OneOfRequiredRule",
    "PathUse",
    "ProfileFile",
    "ReferenceTargetRule",
    "RequiredRule",
    "RequiredWhenRule",
    "Rule",
    "Selector",
    "Severity",
    "StatusCondition",
]


Leaf = Literal["any", "primitive", "Coding", "Reference", "primitive-or-Coding"]


@dataclass(frozen=True, slots=True)
class PathUse:
    """Where in the rule a path sits (for error lines), the path, and the type it must end in."""

    loc: tuple[str | int, ...]
    path: str
    leaf: Leaf


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


def _valid_path(text: str) -> str:
    ElementPath.parse(text)  # InvalidElementPath is a ValueError, so pydantic reports it
    return text


PathText = Annotated[str, AfterValidator(_valid_path)]
Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
ResourceTypeName = Annotated[str, Field(pattern=r"^[A-Z][A-Za-z]+$")]
NonEmptyText = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CodingValue(_Strict):
    system: NonEmptyText
    code: NonEmptyText


class CodingMatch(_Strict):
    """A coding that must (or must not) be among the codings at ``path``."""

    path: PathText
    system: NonEmptyText
    code: NonEmptyText


class Selector(_Strict):
    """When a profile applies to a resource of its type; every condition given must hold.

    No condition at all means: every resource of the type (fhirbridge's own conventions).
    """

    meta_profile: list[NonEmptyText] = Field(
        default_factory=list,
        description="applies when meta.profile holds any of these canonical URLs",
    )
    has_coding: CodingMatch | None = None
    lacks_coding: CodingMatch | None = None


class _RuleBase(_Strict):
    id: Identifier
    description: str | None = None
    severity: Severity = Severity.ERROR
    context: PathText | None = Field(
        default=None,
        description="evaluate the rule once per element found here; paths are then relative",
    )

    def element_paths(self) -> list[PathUse]:
        """Every element path the rule reads (relative to its context) and what it must be."""
        raise NotImplementedError


class RequiredRule(_RuleBase):
    kind: Literal["required"]
    path: PathText
    min: int = Field(default=1, ge=1)

    def element_paths(self) -> list[PathUse]:
        return [PathUse(("path",), self.path, "any")]


class FixedRule(_RuleBase):
    """``path`` carries exactly ``value``, or the codings at ``path`` include ``coding``."""

    kind: Literal["fixed"]
    path: PathText
    value: str | int | bool | None = None
    coding: CodingValue | None = None

    @model_validator(mode="after")
    def _one_expectation(self) -> FixedRule:
        if (self.value is None) == (self.coding is None):
            raise ValueError("a fixed rule needs exactly one of 'value' or 'coding'")
        return self

    def element_paths(self) -> list[PathUse]:
        return [PathUse(("path",), self.path, "Coding" if self.coding else "primitive")]


class BindingRule(_RuleBase):
    """A required binding to an enumerated value set.

    On a primitive (``status``) every value must be listed. On codings (``category.coding``)
    only codings from ``systems`` are judged (all codings when ``systems`` is empty).
    ``match: any`` turns it into "at least one listed code must be there".
    """

    kind: Literal["binding"]
    path: PathText
    values: list[NonEmptyText] = Field(min_length=1)
    systems: list[NonEmptyText] = Field(default_factory=list)
    match: Literal["all", "any"] = "all"
    value_set: str | None = Field(default=None, description="canonical URL, for the reader")

    def element_paths(self) -> list[PathUse]:
        return [PathUse(("path",), self.path, "primitive-or-Coding")]


class ReferenceTargetRule(_RuleBase):
    kind: Literal["reference_target"]
    path: PathText
    targets: list[ResourceTypeName] = Field(min_length=1)

    def element_paths(self) -> list[PathUse]:
        return [PathUse(("path",), self.path, "Reference")]


class OneOfRequiredRule(_RuleBase):
    kind: Literal["one_of_required"]
    paths: list[PathText] = Field(min_length=2)

    def element_paths(self) -> list[PathUse]:
        return [PathUse(("paths", i), p, "any") for i, p in enumerate(self.paths)]


class StatusCondition(_Strict):
    path: PathText
    in_: list[NonEmptyText] = Field(alias="in", min_length=1)


class RequiredWhenRule(_RuleBase):
    kind: Literal["required_when"]
    path: PathText
    when: StatusCondition

    def element_paths(self) -> list[PathUse]:
        return [
            PathUse(("path",), self.path, "any"),
            PathUse(("when", "path"), self.when.path, "primitive"),
        ]


class MustSupportRule(_RuleBase):
    """Must-support elements: a warning when none of ``paths`` is present."""

    kind: Literal["must_support"]
    paths: list[PathText] = Field(min_length=1)
    severity: Literal[Severity.WARNING] = Severity.WARNING

    def element_paths(self) -> list[PathUse]:
        return [PathUse(("paths", i), p, "any") for i, p in enumerate(self.paths)]


class AllowedValuesRule(_RuleBase):
    """A profile's narrowing of a base value set: values outside ``values`` are not allowed."""

    kind: Literal["allowed_values"]
    path: PathText
    values: list[NonEmptyText] = Field(min_length=1)

    def element_paths(self) -> list[PathUse]:
        return [PathUse(("path",), self.path, "primitive")]


class NarrativeRule(_RuleBase):
    """``text`` has an allowed status and an XHTML ``div``; absent text only fails if required."""

    kind: Literal["narrative"]
    statuses: list[NonEmptyText] = Field(
        default_factory=lambda: ["generated", "additional"], min_length=1
    )
    required: bool = False

    def element_paths(self) -> list[PathUse]:
        return [PathUse((), "text.status", "primitive"), PathUse((), "text.div", "primitive")]


Rule = Annotated[
    RequiredRule
    | FixedRule
    | BindingRule
    | ReferenceTargetRule
    | OneOfRequiredRule
    | RequiredWhenRule
    | MustSupportRule
    | AllowedValuesRule
    | NarrativeRule,
    Field(discriminator="kind"),
]


class ProfileFile(_Strict):
    id: Identifier = Field(description="must equal the file name without .yaml")
    title: NonEmptyText
    profile: str | None = Field(default=None, description="canonical URL; None for conventions")
    source: str | None = Field(default=None, description="where the rules come from")
    resource_type: ResourceTypeName
    applies_when: Selector
    rules: list[Rule] = Field(min_length=1)

    def must_support_paths(self) -> list[list[str]]:
        """Each must-support entry as its alternatives, for the mapping layer's own checks."""
        return [list(rule.paths) for rule in self.rules if isinstance(rule, MustSupportRule)]
