"""Is a resource fit to send? R4B model validation plus every profile that applies to it.

The R4B models check structure and datatypes but take any string as a code, so the profile
rules in ``mappings/profiles/`` add what US Core 7, Gravity SDOH and fhirbridge's own
conventions demand. Findings of severity ``error`` block sending (``ensure_conformant``);
``warning`` findings (must-support elements left out) are reported only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import ValidationError

from fhirbridge.conformance.elements import is_resource_type
from fhirbridge.conformance.errors import NonConformantResource
from fhirbridge.conformance.evaluation import RuleCheck, compile_rule, compile_selector
from fhirbridge.conformance.rules import ProfileSet, load_profiles
from fhirbridge.conformance.schema import ProfileFile, Severity
from fhirbridge.conformance.structure import ModelValidator

__all__ = [
    "ConformanceChecker",
    "Finding",
    "check",
    "default_checker",
    "ensure_conformant",
    "resource_label",
]

R4B_RULE_PREFIX = "r4b"


@dataclass(frozen=True, slots=True)
class Finding:
    resource: str  # "CarePlan/cp-1", or "CarePlan (no id)"
    element: str  # dotted path; alternatives joined by "|"
    rule: str  # "<profile id>:<rule id>", or "r4b:<error type>" from the model validation
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: str  # "<profile id>:<rule id>"
    severity: Severity
    run: RuleCheck


@dataclass(frozen=True, slots=True)
class _CompiledProfile:
    profile: ProfileFile
    applies: Callable[[Mapping[str, Any]], bool]
    rules: tuple[_CompiledRule, ...]
    errors: tuple[_CompiledRule, ...]  # the rules whose findings block sending


def _compiled(profile: ProfileFile) -> _CompiledProfile:
    rules = tuple(
        _CompiledRule(f"{profile.id}:{rule.id}", rule.severity, compile_rule(rule))
        for rule in profile.rules
    )
    errors = tuple(rule for rule in rules if rule.severity is Severity.ERROR)
    return _CompiledProfile(profile, compile_selector(profile.applies_when), rules, errors)


class ConformanceChecker:
    """Applies one loaded ProfileSet; one instance can serve every caller (threads too)."""

    def __init__(self, profiles: ProfileSet) -> None:
        self._profiles = profiles
        self._models = ModelValidator()
        # A resource of each type is checked against the same few profiles, looked up and
        # compiled once: paths parsed, selectors and rules turned into functions.
        self._by_type = {
            resource_type: tuple(_compiled(p) for p in profiles.for_type(resource_type))
            for resource_type in {profile.resource_type for profile in profiles.profiles}
        }

    def _applicable(self, resource: Mapping[str, Any]) -> list[_CompiledProfile]:
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            return []
        return [p for p in self._by_type.get(resource_type, ()) if p.applies(resource)]

    def applicable_profiles(self, resource: Mapping[str, Any]) -> tuple[ProfileFile, ...]:
        return tuple(compiled.profile for compiled in self._applicable(resource))

    def check(self, resource: Mapping[str, Any]) -> list[Finding]:
        return self._findings(resource, errors_only=False)

    def ensure_conformant(self, resource: Mapping[str, Any]) -> None:
        """Raise NonConformantResource listing the error findings, if there are any."""
        # Warning rules cannot refuse a resource, so they are not evaluated here.
        errors = self._findings(resource, errors_only=True)
        if errors:
            raise NonConformantResource(resource_label(resource), errors)

    def _findings(self, resource: Mapping[str, Any], *, errors_only: bool) -> list[Finding]:
        label = resource_label(resource)
        findings = _model_findings(self._models, resource, label)
        for profile in self._applicable(resource):
            for rule in profile.errors if errors_only else profile.rules:
                violations = rule.run(resource)
                if violations:
                    findings += [
                        Finding(label, v.element, rule.rule, rule.severity, v.message)
                        for v in violations
                    ]
        return findings


@cache
def default_checker() -> ConformanceChecker:
    """The checker over ``mappings/profiles/``, loaded once; fails fast on a broken file."""
    return ConformanceChecker(load_profiles())


def check(resource: Mapping[str, Any]) -> list[Finding]:
    return default_checker().check(resource)


def ensure_conformant(resource: Mapping[str, Any]) -> None:
    default_checker().ensure_conformant(resource)


def resource_label(resource: Mapping[str, Any]) -> str:
    resource_type = resource.get("resourceType")
    kind = resource_type if isinstance(resource_type, str) and resource_type else "Resource"
    resource_id = resource.get("id")
    if isinstance(resource_id, str) and resource_id:
        return f"{kind}/{resource_id}"
    return f"{kind} (no id)"


def _model_findings(
    models: ModelValidator, resource: Mapping[str, Any], label: str
) -> list[Finding]:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not is_resource_type(resource_type):
        return [
            _type_finding(label, "resourceType", f"{resource_type!r} is not an R4B resource type")
        ]
    nested = _contained_type_findings(resource, label)
    if nested:
        # fhir_core looks the model up by the contained resource's type and fails with a bare
        # KeyError on a name it does not know; a refusal must say which entry and why.
        return nested
    try:
        models.validate(resource_type, resource)
    except ValidationError as error:
        return [
            Finding(
                resource=label,
                element=_element_of(tuple(e["loc"])) or resource_type,
                rule=f"{R4B_RULE_PREFIX}:{e['type']}",
                severity=Severity.ERROR,
                message=_message_of(e["msg"]),
            )
            for e in error.errors(include_url=False, include_input=False)
        ]
    except KeyError as error:
        # The same lookup failing for a resource nested elsewhere (a Bundle entry, a
        # Parameters part): refused, naming the type fhir_core could not find.
        message = f"a nested resource's type is not an R4B resource type ({error})"
        return [_type_finding(label, resource_type, message)]
    return []


def _contained_type_findings(resource: Mapping[str, Any], label: str) -> list[Finding]:
    contained = resource.get("contained")
    if not isinstance(contained, list):
        return []
    findings = []
    for index, item in enumerate(contained):
        kind = item.get("resourceType") if isinstance(item, Mapping) else None
        if isinstance(kind, str) and is_resource_type(kind):
            continue
        message = (
            "a contained resource needs a resourceType"
            if kind is None
            else f"{kind!r} is not an R4B resource type"
        )
        findings.append(_type_finding(label, f"contained[{index}].resourceType", message))
    return findings


def _type_finding(label: str, element: str, message: str) -> Finding:
    return Finding(label, element, f"{R4B_RULE_PREFIX}:resource-type", Severity.ERROR, message)


def _element_of(loc: tuple[str | int, ...]) -> str:
    rendered = ""
    for part in loc:
        if isinstance(part, int):
            rendered += f"[{part}]"
        else:
            rendered += f".{part}" if rendered else str(part)
    return rendered


def _message_of(message: str) -> str:
    # Findings end up in logs, where patient data must not: some model validators append the
    # offending input on later lines, so only the first line (the reason) is kept.
    return message.splitlines()[0] if message else "invalid"
