"""What each rule kind means, applied to resource JSON.

``evaluate(rule, resource)`` returns the violations of one rule; the checker turns them into
findings. Presence is ``required``'s business: the value rules (binding, allowed_values,
reference_target) judge only values that are there, so one missing element yields one finding.
``fixed`` is the exception, because a fixed value that is absent is not the fixed value.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhirbridge.conformance.path import Accessor, ElementPath, accessor
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

__all__ = [
    "RuleCheck",
    "Violation",
    "compile_rule",
    "compile_selector",
    "evaluate",
    "reference_target_type",
    "selects",
]

_XHTML_DIV = "{http://www.w3.org/1999/xhtml}div"
# Relative or absolute literal reference, optionally versioned: [base/]Type/id[/_history/vid]
_LITERAL_REFERENCE = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


@dataclass(frozen=True, slots=True)
class Violation:
    element: str
    message: str


# One rule, compiled: the violations it finds in a resource (an empty tuple when none).
RuleCheck = Callable[[Mapping[str, Any]], Sequence[Violation]]
# A rule applied to one node (the resource, or one element of the rule's context).
_NodeCheck = Callable[[Mapping[str, Any], Mapping[str, Any]], Sequence[Violation]]
_NONE: tuple[Violation, ...] = ()


def selects(selector: Selector, resource: Mapping[str, Any]) -> bool:
    return compile_selector(selector)(resource)


def compile_selector(selector: Selector) -> Callable[[Mapping[str, Any]], bool]:
    """``selects`` for one selector, its paths resolved once."""
    claims = tuple(selector.meta_profile)
    profiles = accessor(ElementPath.parse("meta.profile"))
    has = _coding_test(selector.has_coding)
    lacks = _coding_test(selector.lacks_coding)

    def applies(resource: Mapping[str, Any]) -> bool:
        if claims:
            claimed = profiles(resource)
            if not any(url in claimed for url in claims):
                return False
        if has is not None and not has(resource):
            return False
        return not (lacks is not None and lacks(resource))

    return applies


def _coding_test(match: CodingMatch | None) -> Callable[[Mapping[str, Any]], bool] | None:
    if match is None:
        return None
    codings = accessor(ElementPath.parse(match.path))
    system, code = match.system, match.code

    def has_coding(resource: Mapping[str, Any]) -> bool:
        return any(
            isinstance(c, Mapping) and c.get("system") == system and c.get("code") == code
            for c in codings(resource)
        )

    return has_coding


def evaluate(rule: Rule, resource: Mapping[str, Any]) -> list[Violation]:
    return list(compile_rule(rule)(resource))


def compile_rule(rule: Rule) -> RuleCheck:
    """``evaluate`` for one rule: paths resolved, messages' fixed parts rendered, once.

    A profile's rules run against every resource sent, so nothing that depends on the rule
    alone is worked out again per resource.
    """
    if rule.context is None:
        check = _node_check(rule, prefix="")

        def at_root(resource: Mapping[str, Any]) -> Sequence[Violation]:
            return check(resource, resource)

        return at_root
    contexts = accessor(ElementPath.parse(rule.context))
    each = _node_check(rule, prefix=f"{rule.context}.")

    def in_context(resource: Mapping[str, Any]) -> Sequence[Violation]:
        violations: list[Violation] = []
        for element in contexts(resource):
            if isinstance(element, Mapping):
                found = each(element, resource)
                if found:
                    violations += found
        return violations

    return in_context


def _node_check(rule: Rule, *, prefix: str) -> _NodeCheck:
    match rule:
        case RequiredRule():
            return _required(rule, prefix)
        case FixedRule():
            return _fixed_check(rule, prefix)
        case BindingRule():
            return _binding_check(rule, prefix)
        case ReferenceTargetRule():
            return _reference_check(rule, prefix)
        case OneOfRequiredRule():
            names = [prefix + path for path in rule.paths]
            return _any_present(
                rule.paths, Violation("|".join(names), f"one of {', '.join(names)} must be present")
            )
        case MustSupportRule():
            names = [prefix + path for path in rule.paths]
            message = (
                "is missing (must support)"
                if len(names) == 1
                else f"none of {', '.join(names)} is present (must support)"
            )
            return _any_present(rule.paths, Violation("|".join(names), message))
        case RequiredWhenRule():
            return _required_when(rule, prefix)
        case AllowedValuesRule():
            return _allowed_values(rule, prefix)
        case NarrativeRule():
            return _narrative_check(rule, prefix)


def _values(path: str) -> Accessor:
    return accessor(ElementPath.parse(path))


def _required(rule: RequiredRule, prefix: str) -> _NodeCheck:
    values, minimum, element = _values(rule.path), rule.min, prefix + rule.path
    missing = (Violation(element, "is required but missing"),)

    def required(node: Mapping[str, Any], resource: Mapping[str, Any]) -> Sequence[Violation]:
        found = len(values(node))
        if found >= minimum:
            return _NONE
        if found == 0 and minimum == 1:
            return missing
        return (Violation(element, f"needs at least {minimum}; found {found}"),)

    return required


def _fixed_check(rule: FixedRule, prefix: str) -> _NodeCheck:
    values, element = _values(rule.path), prefix + rule.path

    def fixed(node: Mapping[str, Any], resource: Mapping[str, Any]) -> Sequence[Violation]:
        return list(_fixed(rule, values(node), element))

    return fixed


def _binding_check(rule: BindingRule, prefix: str) -> _NodeCheck:
    values, element = _values(rule.path), prefix + rule.path

    # Over nothing at all, "match: any" finds its one violation and "match: all" none.
    nothing_found = tuple(_binding(rule, [], element))

    def binding(node: Mapping[str, Any], resource: Mapping[str, Any]) -> Sequence[Violation]:
        found = values(node)
        if not found:
            return nothing_found
        return list(_binding(rule, found, element))

    return binding


def _reference_check(rule: ReferenceTargetRule, prefix: str) -> _NodeCheck:
    values, element = _values(rule.path), prefix + rule.path

    def reference_target(
        node: Mapping[str, Any], resource: Mapping[str, Any]
    ) -> Sequence[Violation]:
        found = values(node)
        if not found:
            return _NONE
        violations: list[Violation] = []
        for reference in found:
            violations += _reference(rule, reference, resource, element)
        return violations

    return reference_target


def _any_present(paths: Sequence[str], violation: Violation) -> _NodeCheck:
    readers = tuple(_values(path) for path in paths)
    none_present = (violation,)

    def any_present(node: Mapping[str, Any], resource: Mapping[str, Any]) -> Sequence[Violation]:
        for read in readers:
            if read(node):
                return _NONE
        return none_present

    return any_present


def _required_when(rule: RequiredWhenRule, prefix: str) -> _NodeCheck:
    values, conditions = _values(rule.path), _values(rule.when.path)
    among, element = rule.when.in_, prefix + rule.path

    def required_when(node: Mapping[str, Any], resource: Mapping[str, Any]) -> Sequence[Violation]:
        triggers = [v for v in conditions(node) if v in among]
        if triggers and not values(node):
            return (
                Violation(element, f"is required when {prefix}{rule.when.path} is {triggers[0]!r}"),
            )
        return _NONE

    return required_when


def _allowed_values(rule: AllowedValuesRule, prefix: str) -> _NodeCheck:
    values, allowed, element = _values(rule.path), rule.values, prefix + rule.path
    listed = ", ".join(rule.values)

    def allowed_values(node: Mapping[str, Any], resource: Mapping[str, Any]) -> Sequence[Violation]:
        return [
            Violation(element, f"{value!r} is not allowed here; allowed: {listed}")
            for value in values(node)
            if value not in allowed
        ]

    return allowed_values


def _narrative_check(rule: NarrativeRule, prefix: str) -> _NodeCheck:
    element = prefix + "text"

    def narrative(node: Mapping[str, Any], resource: Mapping[str, Any]) -> Sequence[Violation]:
        return list(_narrative(rule, node.get("text"), element))

    return narrative


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
