"""Apply a resource mapping: domain record -> FHIR JSON, and FHIR JSON -> domain values.

Outbound, the record is laid over ``base`` (the resource as last seen on the server) so that
everything we do not own survives: other systems' identifiers, extensions and codings,
elements we do not map. An existing element that already means the same value is kept
verbatim (``2024-01-05T10:00:00+00:00`` is not rewritten as ``...Z``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Any

from fhirbridge.jsondata import clone
from fhirbridge.mapping.context import MappingContext, MappingError, MissingReference
from fhirbridge.mapping.elements import ElementPath, Segment
from fhirbridge.mapping.transforms import UCUM, Compiled, Transform

__all__ = [
    "RECORD",
    "RecordTransform",
    "ResourceMapping",
    "apply_resource",
    "build_entity",
    "field_type",
]

_MISSING = object()
_COMPANION_KEY = {"text_from": "text", "display_from": "display", "unit_from": "unit"}


@dataclass(frozen=True, slots=True)
class _Rule:
    compiled: Compiled
    path: ElementPath
    transform: Transform
    # Rules on the same list element whose items this one leaves alone (see ``_yielding``).
    yields_to: tuple[_Rule, ...] = ()
    # Worked out once here, not for every record mapped (a push maps thousands):
    field_parts: tuple[str, ...] = dataclasses.field(init=False)  # the domain field, split
    listed: bool = dataclasses.field(init=False)  # a list element: one item per value
    # (element key, domain field split) of the companions (``text_from`` ...) the rule has
    companions: tuple[tuple[str, tuple[str, ...]], ...] = dataclasses.field(init=False)
    # A list element: the list itself, and the path inside each item (``[*]``; else empty).
    container: tuple[Segment, ...] = dataclasses.field(init=False)
    inner: tuple[Segment, ...] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        rule = self.compiled.rule
        object.__setattr__(self, "field_parts", tuple(rule.field.split(".")))
        object.__setattr__(self, "listed", self.path.each_at is not None or self.path.leaf_is_list)
        companions = tuple(
            (key, tuple(getattr(rule, attr).split(".")))
            for attr, key in _COMPANION_KEY.items()
            if getattr(rule, attr)
        )
        object.__setattr__(self, "companions", companions)
        segments, each = self.path.segments, self.path.each_at
        container: tuple[Segment, ...] = segments
        inner: tuple[Segment, ...] = ()
        if each is not None:
            container = (*segments[:each], dataclasses.replace(segments[each], each=False))
            inner = segments[each + 1 :]
        object.__setattr__(self, "container", container)
        object.__setattr__(self, "inner", inner)


@dataclass(frozen=True, slots=True)
class _Fixed:
    path: ElementPath
    value: Any
    coding: dict[str, str] | None


@dataclass(frozen=True)
class ResourceMapping:
    """A loaded, checked mapping between one domain concept and one FHIR resource type."""

    concept: str
    resource: str
    profile: str | None
    identifier_prefix: str
    source: str  # file it came from, for error messages
    rules: tuple[_Rule, ...]
    fixed: tuple[_Fixed, ...]
    primary: bool = True  # the resource other records reference the concept by
    after: tuple[str, ...] = ()  # concepts pushed before this one (see mapping.plan)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", _yielding(self.rules))

    @property
    def remote_fields(self) -> frozenset[str]:
        """Domain fields whose value the other side decides (see ``FieldRule.owner``)."""
        return frozenset(
            r.compiled.rule.field for r in self.rules if r.compiled.rule.owner == "remote"
        )

    @property
    def owned_fields(self) -> frozenset[str]:
        names = set()
        for rule in self.rules:
            names.add(rule.compiled.rule.field.split(".")[0])
            for attr in _COMPANION_KEY:
                extra = getattr(rule.compiled.rule, attr)
                if extra:
                    names.add(extra.split(".")[0])
        return frozenset(names)

    # -- outbound -------------------------------------------------------------------------

    def to_fhir(
        self, entity: Any, ctx: MappingContext, *, base: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        resource: dict[str, Any] = clone(base) if base else {}
        resource["resourceType"] = self.resource
        if self.profile:
            profiles = resource.setdefault("meta", {}).setdefault("profile", [])
            if self.profile not in profiles:
                profiles.append(self.profile)
        label = f"{self.resource}/{getattr(entity, 'id', '?')}"
        for fixed in self.fixed:
            _apply_fixed(resource, fixed)
        for rule in self.rules:
            try:
                _apply_rule(resource, rule, entity, ctx)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise MappingError(label, rule.path.text, str(exc)) from exc
        return resource

    # -- inbound --------------------------------------------------------------------------

    def from_fhir(self, resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
        """Domain values (dotted field name -> value) for every field this mapping owns."""
        label = f"{self.resource}/{resource.get('id', '(no id)')}"
        if resource.get("resourceType") != self.resource:
            raise MappingError(label, "resourceType", f"expected {self.resource}")
        values: dict[str, Any] = {}
        for rule in self.rules:
            try:
                read = _read_rule(resource, rule, ctx)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise MappingError(label, rule.path.text, str(exc)) from exc
            for name, value in read.items():
                # Several rules may share a field (a unit on a value or a range, an id in
                # identifier and focus): an absent element must not erase what another found.
                if value not in (None, []) or name not in values:
                    values[name] = value
        if values.get("id") is None and isinstance(resource.get("id"), str):
            # Another system's resource without our business identifier: adopt it under its
            # server id; the identifier is added when we next write it.
            values["id"] = resource["id"]
        return values


# -- paths -------------------------------------------------------------------------------


def _get(node: Any, segments: tuple[Segment, ...]) -> Any:
    for seg in segments:
        if not isinstance(node, dict) or seg.name not in node:
            return None
        node = node[seg.name]
        if seg.index is not None:
            if not isinstance(node, list) or len(node) <= seg.index:
                return None
            node = node[seg.index]
    return node


def _set(node: dict[str, Any], segments: tuple[Segment, ...], value: Any) -> None:
    for seg in segments[:-1]:
        if seg.index is not None:
            items = node.setdefault(seg.name, [])
            while len(items) <= seg.index:
                items.append({})
            node = items[seg.index]
        else:
            node = node.setdefault(seg.name, {})
    last = segments[-1]
    if last.index is not None:
        items = node.setdefault(last.name, [])
        while len(items) <= last.index:
            items.append({})
        items[last.index] = value
    else:
        node[last.name] = value


def _delete(node: dict[str, Any], segments: tuple[Segment, ...]) -> None:
    """Remove the element and any parents it leaves empty."""
    if not segments:
        return
    seg = segments[0]
    if seg.name not in node:
        return
    if len(segments) == 1 and seg.index is None:
        del node[seg.name]
        return
    child = node[seg.name]
    if seg.index is not None:
        if not isinstance(child, list) or len(child) <= seg.index:
            return
        if len(segments) == 1:
            child.pop(seg.index)
        elif isinstance(child[seg.index], dict):
            _delete(child[seg.index], segments[1:])
            if not child[seg.index]:
                child.pop(seg.index)
    elif isinstance(child, dict):
        _delete(child, segments[1:])
    if node[seg.name] in ({}, []):
        del node[seg.name]


# -- rules -------------------------------------------------------------------------------


def _domain_value(entity: Any, parts: tuple[str, ...]) -> Any:
    value = entity
    for part in parts:
        if value is None:
            return None
        value = getattr(value, part)
    return value


def _yielding(rules: tuple[_Rule, ...]) -> tuple[_Rule, ...]:
    """Two rules may share a list element: a Goal's ``addresses`` holds the EHR's Conditions
    (``target: Condition``, raw references) and our own health concerns (``concept:
    health_concern``). A raw-reference rule leaves alone the items a sibling ``concept`` rule
    on the same element resolves to one of our records: those are the sibling's."""

    def is_list(rule: _Rule) -> bool:
        return rule.path.each_at is not None or rule.path.leaf_is_list

    def ours(rule: _Rule) -> bool:
        return (
            rule.compiled.rule.transform == "reference" and rule.compiled.rule.concept is not None
        )

    out = []
    for rule in rules:
        raw = rule.compiled.rule.transform == "reference" and rule.compiled.rule.concept is None
        siblings = tuple(
            other
            for other in rules
            if raw and is_list(rule) and ours(other) and other.path.segments == rule.path.segments
        )
        out.append(dataclasses.replace(rule, yields_to=siblings))
    return tuple(out)


def _claims(rule: _Rule, element: Any, ctx: MappingContext) -> bool:
    if not rule.transform.claims(element, rule.compiled, ctx):
        return False
    return not any(o.transform.claims(element, o.compiled, ctx) for o in rule.yields_to)


def _apply_fixed(resource: dict[str, Any], fixed: _Fixed) -> None:
    current = _get(resource, fixed.path.segments)
    if fixed.coding is None:
        if current is None:
            _set(resource, fixed.path.segments, clone(fixed.value))
        return
    items = current if isinstance(current, list) else []
    wanted = (fixed.coding["system"], fixed.coding["code"])
    for item in items:
        for coding in item.get("coding", []) if isinstance(item, dict) else []:
            if (coding.get("system"), coding.get("code")) == wanted:
                return
    _set(resource, fixed.path.segments, [*items, {"coding": [dict(fixed.coding)]}])


def _apply_rule(resource: dict[str, Any], rule: _Rule, entity: Any, ctx: MappingContext) -> None:
    c = rule.compiled
    value = _domain_value(entity, rule.field_parts)
    if rule.listed:
        values = list(value or []) if c.is_list else ([] if value is None else [value])
        _apply_list(resource, rule, values, ctx)
        return
    existing = _get(resource, rule.path.segments)
    companions = {key: _domain_value(entity, parts) for key, parts in rule.companions}
    if existing is not None and _read_scalar(existing, rule, ctx) == (value, companions):
        return  # same meaning: keep the server's spelling
    if value is None:
        new = (
            existing
            if existing is not None and not rule.transform.claims(existing, c, ctx)
            else None
        )
        if c.rule.transform == "concept":
            new = rule.transform.to_fhir(None, existing, c, ctx)
    else:
        try:
            new = rule.transform.to_fhir(value, existing, c, ctx)
        except MissingReference:
            return  # left as it is until the target can be referenced
    for key, companion in companions.items():
        if value is None and c.rule.transform != "concept":
            break  # a unit or display means nothing without its value
        new = dict(new) if isinstance(new, dict) else {}
        if companion is None:
            new.pop(key, None)
        else:
            new[key] = str(companion)
            if key == "unit":
                new.update({"system": UCUM, "code": str(companion)})
    if new in (None, {}, []):
        _delete(resource, rule.path.segments)
    else:
        _set(resource, rule.path.segments, new)


def _apply_list(
    resource: dict[str, Any], rule: _Rule, values: list[Any], ctx: MappingContext
) -> None:
    c = rule.compiled
    container, inner = rule.container, rule.inner
    existing = _get(resource, container)
    items = list(existing) if isinstance(existing, list) else []
    pending = iter(values)
    out: list[Any] = []
    for item in items:
        target = _get(item, inner) if inner else item
        if target is None or not _claims(rule, target, ctx):
            out.append(item)
            continue
        value = next(pending, _MISSING)
        if value is _MISSING:
            continue  # the record no longer has it
        if _read_one(target, rule, ctx) == value:
            out.append(item)
            continue
        try:
            out.append(_place(item, inner, rule.transform.to_fhir(value, target, c, ctx)))
        except MissingReference:
            out.append(item)
    for value in pending:
        try:
            out.append(_place({}, inner, rule.transform.to_fhir(value, None, c, ctx)))
        except MissingReference:
            continue  # left out until the target can be referenced
    if out:
        _set(resource, container, out)
    else:
        _delete(resource, container)


def _place(item: Any, inner: tuple[Segment, ...], value: Any) -> Any:
    if not inner:
        return value
    placed = clone(item) if isinstance(item, dict) else {}
    _set(placed, inner, value)
    return placed


def _read_one(element: Any, rule: _Rule, ctx: MappingContext) -> Any:
    return rule.transform.from_fhir(element, rule.compiled, ctx)


def _read_scalar(element: Any, rule: _Rule, ctx: MappingContext) -> tuple[Any, dict[str, Any]]:
    c = rule.compiled
    value = _read_one(element, rule, ctx) if rule.transform.claims(element, c, ctx) else None
    companions: dict[str, Any] = {}
    for attr, key in _COMPANION_KEY.items():
        if getattr(c.rule, attr):
            raw = element.get(key) if isinstance(element, dict) else None
            companions[key] = raw
    return value, companions


def _read_rule(resource: dict[str, Any], rule: _Rule, ctx: MappingContext) -> dict[str, Any]:
    c = rule.compiled
    each = rule.path.each_at
    if each is not None or rule.path.leaf_is_list:
        found = []
        for target in _iter_targets(resource, rule):
            if _claims(rule, target, ctx):
                value = _read_one(target, rule, ctx)
                if value is not None:
                    found.append(value)
        if c.is_list:
            return {c.rule.field: found}
        return {c.rule.field: found[0] if found else None}
    element = _get(resource, rule.path.segments)
    out: dict[str, Any] = {c.rule.field: None}
    for attr in _COMPANION_KEY:
        if getattr(c.rule, attr):
            out[getattr(c.rule, attr)] = None
    if element is None:
        return out
    value, companions = _read_scalar(element, rule, ctx)
    if value is None and c.rule.transform in {"code", "string", "date", "datetime", "boolean"}:
        value = _read_one(element, rule, ctx)  # raises a clear error for bad content
    out[c.rule.field] = value
    for attr, key in _COMPANION_KEY.items():
        name = getattr(c.rule, attr)
        if name:
            out[name] = companions[key]
    return out


def _iter_targets(resource: dict[str, Any], rule: _Rule) -> Iterator[Any]:
    if rule.path.each_at is None:
        items = _get(resource, rule.path.segments)
        yield from items if isinstance(items, list) else []
        return
    items = _get(resource, rule.container)
    for item in items if isinstance(items, list) else []:
        target = _get(item, rule.inner)
        if target is not None:
            yield target


# -- building domain records -------------------------------------------------------------


def field_type(cls: type, dotted: str) -> tuple[type, bool, bool]:
    """(value type, is list, is optional) of a possibly nested dataclass field."""
    current: Any = cls
    hint: Any = None
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(current):
            raise KeyError(dotted)
        hints = typing.get_type_hints(current)
        if part not in hints:
            raise KeyError(dotted)
        hint = hints[part]
        current = _unwrap(hint)[0]
    base, optional = _unwrap(hint)
    origin = typing.get_origin(base)
    if origin is list:
        return typing.get_args(base)[0], True, optional
    return base, False, optional


def _unwrap(hint: Any) -> tuple[Any, bool]:
    if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not NoneType]
        return args[0], True
    return hint, False


def build_entity(cls: type, values: dict[str, Any], *, label: str) -> Any:
    """Construct a domain record from dotted field values; nested records built as needed."""
    flat: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        head, _, rest = name.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[head] = value
    hints = typing.get_type_hints(cls)
    for head, sub in nested.items():
        inner, _ = _unwrap(hints[head])
        flat[head] = (
            build_entity(inner, sub, label=label)
            if any(v not in (None, []) for v in sub.values())
            else None
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    missing = [
        name
        for name, f in fields.items()
        if flat.get(name) is None
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and not _unwrap(hints[name])[1]
    ]
    if missing:
        raise MappingError(label, "(record)", f"missing required value(s): {', '.join(missing)}")
    kwargs = {
        k: v
        for k, v in flat.items()
        if k in fields and not (v is None and fields[k].default is not dataclasses.MISSING)
    }
    return cls(**kwargs)


def apply_resource(
    entity: Any, mapping: ResourceMapping, resource: dict[str, Any], ctx: MappingContext
) -> Any:
    """``entity`` with the fields ``mapping`` owns replaced by what ``resource`` says.

    How an inbound change to one of a record's resources (a referral's Task moved by the
    performer) reaches the record without touching fields other resources carry.
    """
    values = mapping.from_fhir(resource, ctx)
    values.pop("id", None)
    current = {f.name: getattr(entity, f.name) for f in dataclasses.fields(entity)}
    flat = dict(values)
    nested_heads = {name.split(".")[0] for name in flat if "." in name}
    for head in nested_heads:
        inner = current.get(head)
        if dataclasses.is_dataclass(inner) and not isinstance(inner, type):
            for f in dataclasses.fields(inner):
                flat.setdefault(f"{head}.{f.name}", getattr(inner, f.name))
    merged = {k: v for k, v in current.items() if k not in nested_heads}
    merged.update(flat)
    return build_entity(type(entity), merged, label=f"{mapping.resource}/{entity.id}")


class RecordTransform(Transform):
    """``transform: record``: each item of a list field is a small record of its own (a
    questionnaire answer: its linkId and the answer given), mapped into the list element's
    children by the rule's own ``fields`` (compiled into ``Compiled.parts``). Every item of the
    list is ours: the record owns the list."""

    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        node: dict[str, Any] = clone(existing) if isinstance(existing, dict) else {}
        for part in c.parts:
            _apply_rule(node, part, value, ctx)
        return node

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        if not isinstance(element, dict):
            raise c.fail("expected an element with children")
        values: dict[str, Any] = {}
        for part in c.parts:
            for name, found in _read_rule(element, part, ctx).items():
                if found not in (None, []) or name not in values:
                    values[name] = found
        return build_entity(c.py_type, values, label=c.rule.element)


RECORD = RecordTransform()
