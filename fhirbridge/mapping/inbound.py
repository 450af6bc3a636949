"""Which resources of other systems become care-management records (``mappings/inbound.yaml``).

The rules, checked at start-up like every mapping file (``file:line: reason``):

- A resource carrying our identifier system (or linked to one of our records) is always ours;
  callers decide that before asking these rules.
- Any other resource is adopted as the rule's concept (``as``) when its type has a rule and the
  rule says ``always``, or one of its ``when_any`` conditions holds:
  ``codes`` (the element carries one of these codes), ``systems`` (it carries any code of these
  systems) or ``refers_to`` (it references a record of that concept known here, through the
  concept's primary resource type).
- Everything else is skipped, with the reason its rule gives (``otherwise``), or "no adoption
  rule" for a type no rule names; callers count skipped resources by that reason.

Element paths are checked against the R4B models: a code condition needs a CodeableConcept or
Coding element, a ``refers_to`` condition a Reference element.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirbridge.datafiles import DataFileError, YamlDocument, parse_model, read_yaml
from fhirbridge.mapping.elements import ElementPath, UnknownElement, resolve
from fhirbridge.mapping.schema import AdoptionCondition, AdoptionRule, InboundFile

if TYPE_CHECKING:  # the loader reads inbound.yaml with the other mapping files
    from fhirbridge.mapping.loader import Mappings

__all__ = [
    "INBOUND_FILE",
    "NO_RULE",
    "Adopt",
    "AdoptionCondition",
    "InboundRules",
    "KnownRecord",
    "Skip",
    "load_inbound",
]

INBOUND_FILE = "inbound.yaml"
NO_RULE = "no adoption rule"
_CODED = frozenset({"CodeableConcept", "Coding"})

# (concept, reference such as "CarePlan/123") -> whether that record is known here.
KnownRecord = Callable[[str, str], bool]


@dataclass(frozen=True)
class Adopt:
    concept: str


@dataclass(frozen=True)
class Skip:
    reason: str  # "<resource type>: <why>", the key callers count by


@dataclass(frozen=True)
class _Condition:
    path: ElementPath
    codings: frozenset[tuple[str, str]]  # (system URI, code)
    systems: frozenset[str]  # system URIs
    refers_to: str | None
    reference_type: str | None  # the primary resource type of ``refers_to``

    def holds(self, resource: Mapping[str, Any], known: KnownRecord) -> bool:
        values = list(_values(resource, self.path))
        if self.refers_to is not None:
            return any(self._known(value, known) for value in values)
        for value in values:
            for system, code in _codings(value):
                if system in self.systems or (system, code) in self.codings:
                    return True
        return False

    def _known(self, value: Any, known: KnownRecord) -> bool:
        reference = value.get("reference") if isinstance(value, Mapping) else None
        if not isinstance(reference, str) or self.refers_to is None:
            return False
        relative = "/".join(reference.rstrip("/").split("/")[-2:])
        if relative.split("/")[0] != self.reference_type:
            return False
        return known(self.refers_to, relative)


@dataclass(frozen=True)
class _Rule:
    resource: str
    concept: str
    always: bool
    conditions: tuple[_Condition, ...]
    otherwise: str


@dataclass(frozen=True)
class InboundRules:
    rules: Mapping[str, _Rule]  # resource type -> its rule

    def decide(self, resource: Mapping[str, Any], known: KnownRecord) -> Adopt | Skip:
        """Whether a resource of another system becomes a record, and of which concept."""
        rtype = str(resource.get("resourceType"))
        rule = self.rules.get(rtype)
        if rule is None:
            return Skip(f"{rtype}: {NO_RULE}")
        if rule.always or any(c.holds(resource, known) for c in rule.conditions):
            return Adopt(rule.concept)
        return Skip(f"{rtype}: {rule.otherwise}")


def load_inbound(root: Path, mappings: Mappings) -> InboundRules:
    """Read and check ``<root>/inbound.yaml`` against the loaded mappings."""
    path = root / INBOUND_FILE
    document = read_yaml(path)
    spec = parse_model(InboundFile, document)
    rules: dict[str, _Rule] = {}
    for i, rule in enumerate(spec.adopt):
        if rule.resource in rules:
            line = document.line_of(["adopt", i, "resource"])
            raise DataFileError(path, line, f"a second rule for {rule.resource}")
        rules[rule.resource] = _compile(rule, i, document, mappings)
    return InboundRules(rules)


_Fail = Callable[[list[str | int], str], DataFileError]


def _compile(rule: AdoptionRule, index: int, raw: YamlDocument, mappings: Mappings) -> _Rule:
    def fail(loc: list[str | int], reason: str) -> DataFileError:
        return DataFileError(raw.path, raw.line_of(["adopt", index, *loc]), reason)

    try:
        mappings.get(rule.as_, rule.resource)
    except KeyError:
        raise fail(["as"], f"no mapping reads {rule.resource} as {rule.as_}") from None
    if rule.always == bool(rule.when_any):
        raise fail([], "say either 'always: true' or the conditions under 'when_any'")
    conditions = []
    for n, spec in enumerate(rule.when_any):

        def fail_here(loc: list[str | int], reason: str, n: int = n) -> DataFileError:
            return fail(["when_any", n, *loc], reason)

        conditions.append(_condition(rule.resource, spec, mappings, fail_here))
    return _Rule(
        resource=rule.resource,
        concept=rule.as_,
        always=rule.always,
        conditions=tuple(conditions),
        otherwise=rule.otherwise or "no condition of its adoption rule holds",
    )


def _condition(
    resource: str, spec: AdoptionCondition, mappings: Mappings, fail: _Fail
) -> _Condition:
    given = [k for k in ("codes", "systems", "refers_to") if getattr(spec, k) is not None]
    if len(given) != 1:
        raise fail([], "a condition names exactly one of 'codes', 'systems', 'refers_to'")
    try:
        path = resolve(resource, spec.element)
    except UnknownElement as exc:
        raise fail(["element"], f"unknown FHIR element {exc}") from exc
    wanted = _CODED if spec.refers_to is None else frozenset({"Reference"})
    if path.leaf_type not in wanted:
        kind = " or ".join(sorted(wanted))
        raise fail(["element"], f"'{spec.element}' is a {path.leaf_type}, not a {kind}")
    terminology = mappings.terminology
    for alias in [*(spec.codes or {}), *(spec.systems or [])]:
        if alias not in terminology.systems:
            raise fail(
                [given[0], alias] if spec.codes else [given[0]], f"unknown code system '{alias}'"
            )
    reference_type = None
    if spec.refers_to is not None:
        reference_type = mappings.plan.primary_or_none(spec.refers_to)
        if reference_type is None:
            raise fail(["refers_to"], f"no mapping for concept '{spec.refers_to}'")
    return _Condition(
        path=path,
        codings=frozenset(
            (terminology.uri(alias), code)
            for alias, codes in (spec.codes or {}).items()
            for code in codes
        ),
        systems=frozenset(terminology.uri(alias) for alias in spec.systems or []),
        refers_to=spec.refers_to,
        reference_type=reference_type,
    )


def _values(resource: Mapping[str, Any], path: ElementPath) -> Iterator[Any]:
    """Every value at ``path`` (lists flattened; an index picks one item)."""
    current: list[Any] = [resource]
    for segment in path.segments:
        found: list[Any] = []
        for value in current:
            child = value.get(segment.name) if isinstance(value, Mapping) else None
            items = child if isinstance(child, list) else [] if child is None else [child]
            if segment.index is not None:
                items = items[segment.index : segment.index + 1]
            found.extend(items)
        current = found
    yield from current


def _codings(value: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(value, Mapping):
        return
    codings = value.get("coding") if "coding" in value else [value]
    for coding in codings or []:
        if isinstance(coding, Mapping):
            system, code = coding.get("system"), coding.get("code")
            if isinstance(system, str) and isinstance(code, str):
                yield system, code
