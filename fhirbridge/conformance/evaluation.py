"""What each rule kind means, applied to resource JSON.

``evaluate(rule, resource)`` returns the violations of one rule; the checker turns them into
findings. Presence is ``required``'s business: the value rules (binding, allowed_values,
reference_target) judge only values that are there, so one missing element yields one finding.
``fixed`` is the exception, because a fixed value that is absent is not the fixed value.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhirbridge.conformance.path import ElementPath, resolve
from fhirbridge.conformance.schema import (
    AllowedValuesRule,
    BindingRule,
    CodingMatch,
    FixedRule,
    MustSupportRule,
    NarrativeRule,
    OneOfRequiredRule,
    ReferenceTargetRule,
    RequiredRule,
    RequiredWhenRule,
    Rule,
    Selector,
)

__all__ = ["Violation", "evaluate", "reference_target_type", "selects"]

_XHTML_DIV = "{http://www.w3.org/1999/xhtml}div"
# Relative or absolute literal reference, optionally versioned: [base/]Type/id[/_history/vid]
_LITERAL_REFERENCE = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


@dataclass(frozen=True, slots=True)
class Violation:
    element: str
    message: str


def selects(selector: Selector, resource: Mapping[str, Any]) -> bool:
    if selector.meta_profile:
        claimed = resolve(resource, ElementPath.parse("meta.profile"))
        if not any(url in claimed for url in selector.meta_profile):
            return False
    if selector.has_coding is not None and not _has_coding(resource, selector.has_coding):
        return False
    return not (selector.lacks_coding is not None and _has_coding(resource, selector.lacks_coding))


def _has_coding(resource: Mapping[str, Any], match: CodingMatch) -> bool:
    return any(
        isinstance(c, Mapping) and c.get("system") == match.system and c.get("code") == match.code
        for c in resolve(resource, ElementPath.parse(match.path))
    )


def evaluate(rule: Rule, resource: Mapping[str, Any]) -> list[Violation]:
    if rule.context is None:
        return list(_evaluate_in(rule, resource, resource, prefix=""))
    violations: list[Violation] = []
    for element in resolve(resource, ElementPath.parse(rule.context)):
        if isinstance(element, Mapping):
            violations.extend(_evaluate_in(rule, element, resource, prefix=f"{rule.context}."))
    return violations


def _evaluate_in(
    rule: Rule, node: Mapping[str, Any], resource: Mapping[str, Any], *, prefix: str
) -> Iterator[Violation]:
    def values(path: str) -> list[Any]:
        return resolve(node, ElementPath.parse(path))

    match rule:
        case RequiredRule():
            found = len(values(rule.path))
            if found < rule.min:
                yield Violation(
                    prefix + rule.path,
                    "is required but missing"
                    if found == 0 and rule.min == 1
                    else f"needs at least {rule.min}; found {found}",
                )
        case FixedRule():
            yield from _fixed(rule, values(rule.path), prefix + rule.path)
        case BindingRule():
            yield from _binding(rule, values(rule.path), prefix + rule.path)
        case ReferenceTargetRule():
            for reference in values(rule.path):
                yield from _reference(rule, reference, resource, prefix + rule.path)
        case OneOfRequiredRule():
            if not any(values(path) for path in rule.paths):
                names = [prefix + path for path in rule.paths]
                yield Violation("|".join(names), f"one of {', '.join(names)} must be present")
        case MustSupportRule():
            if not any(values(path) for path in rule.paths):
                names = [prefix + path for path in rule.paths]
                message = (
                    "is missing (must support)"
                    if len(names) == 1
                    else f"none of {', '.join(names)} is present (must support)"
                )
                yield Violation("|".join(names), message)
        case RequiredWhenRule():
            triggers = [v for v in values(rule.when.path) if v in rule.when.in_]
            if triggers and not values(rule.path):
                yield Violation(
                    prefix + rule.path,
                    f"is required when {prefix}{rule.when.path} is {triggers[0]!r}",
                )
        case AllowedValuesRule():
            for value in values(rule.path):
                if value not in rule.values:
                    yield Violation(
                        prefix + rule.path,
                        f"{value!r} is not allowed here; allowed: {', '.join(rule.values)}",
                    )
        case NarrativeRule():
            yield from _narrative(rule, node.get("text"), prefix + "text")


def _fixed(rule: FixedRule, found: list[Any], element: str) -> Iterator[Violation]:
    if rule.coding is not None:
        expected = rule.coding
        if not any(
            isinstance(c, Mapping)
            and c.get("system") == expected.system
            and c.get("code") == expected.code
            for c in found
        ):
            yield Violation(element, f"must include the coding {expected.system}|{expected.code}")
        return
    if not found:
        yield Violation(element, f"is missing; must be {rule.value!r}")
    for value in found:
        # bool is an int in Python; True must not pass for 1.
        if value != rule.value or type(value) is not type(rule.value):
            yield Violation(element, f"is {value!r}; must be {rule.value!r}")


def _binding(rule: BindingRule, found: list[Any], element: str) -> Iterator[Violation]:
    codes: list[str] = []
    for value in found:
        if isinstance(value, Mapping):
            if not rule.systems or value.get("system") in rule.systems:
                codes.append(str(value.get("code")))
        else:
            codes.append(str(value))
    listed = [code for code in codes if code in rule.values]
    bound_to = rule.value_set or ", ".join(rule.values)
    if rule.match == "any":
        if not listed:
            within = f" from {' or '.join(rule.systems)}" if rule.systems else ""
            yield Violation(element, f"needs at least one code{within} in {bound_to}")
        return
    for code in codes:
        if code not in rule.values:
            yield Violation(element, f"{code!r} is not in the required value set {bound_to}")


def _reference(
    rule: ReferenceTargetRule, reference: Any, resource: Mapping[str, Any], element: str
) -> Iterator[Violation]:
    if not isinstance(reference, Mapping):
        return  # not a Reference at all: the R4B model validation reports that
    target = reference_target_type(reference, resource)
    allowed = ", ".join(rule.targets)
    if target is None:
        # display is left out of the message: it can be a patient's name.
        literal = reference.get("reference")
        shown = repr(literal) if literal else "a reference without Reference.reference"
        yield Violation(
            element,
            f"cannot tell what {shown} points at; give Reference.type (one of {allowed})",
        )
    elif target not in rule.targets:
        yield Violation(element, f"points at a {target}; must point at {allowed}")


def reference_target_type(reference: Mapping[str, Any], resource: Mapping[str, Any]) -> str | None:
    """The resource type a Reference points at, or None when the reference does not say.

    ``Reference.type`` wins; otherwise a literal reference names it (``Patient/1``, an absolute
    URL, a ``#contained`` id). ``urn:uuid:`` references within a transaction say nothing.
    """
    declared = reference.get("type")
    if isinstance(declared, str) and declared:
        return declared
    literal = reference.get("reference")
    if not isinstance(literal, str):
        return None
    if literal.startswith("#"):
        for contained in resource.get("contained") or []:
            if isinstance(contained, Mapping) and contained.get("id") == literal[1:]:
                kind = contained.get("resourceType")
                return kind if isinstance(kind, str) else None
        return None
    matched = _LITERAL_REFERENCE.search(literal.split("?", 1)[0])
    return matched.group("type") if matched else None


def _narrative(rule: NarrativeRule, text: Any, element: str) -> Iterator[Violation]:
    if not isinstance(text, Mapping) or not text:
        if rule.required:
            yield Violation(element, "a narrative is required")
        return
    status = text.get("status")
    if status not in rule.statuses:
        yield Violation(
            f"{element}.status",
            f"is {status!r}; must be one of {', '.join(rule.statuses)}",
        )
    div = text.get("div")
    if not isinstance(div, str) or not div.strip():
        yield Violation(f"{element}.div", "an XHTML div is required")
        return
    try:
        root = ET.fromstring(div)
    except ET.ParseError as error:
        yield Violation(f"{element}.div", f"is not well-formed XHTML: {error}")
        return
    if root.tag != _XHTML_DIV:
        yield Violation(
            f"{element}.div",
            'must be a <div xmlns="http://www.w3.org/1999/xhtml"> element',
        )
