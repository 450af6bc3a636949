"""Named transforms between domain values and FHIR element values.

Each transform converts one way and back, and says which existing items of a list element it
"claims" (owns), so that items other systems own are never touched: their codings in a shared
CodeableConcept, their identifiers, their extensions, references we cannot resolve.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from fhirbridge.domain.codes import Code
from fhirbridge.mapping.codes import CodeTable
from fhirbridge.mapping.context import MappingContext
from fhirbridge.mapping.schema import FieldRule

__all__ = ["TRANSFORMS", "Compiled", "Transform"]

XHTML_NS = "http://www.w3.org/1999/xhtml"
UCUM = "http://unitsofmeasure.org"
RESULTING_ACTIVITY = {
    "system": "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes",
    "code": "resulting-activity",
    "display": "Resulting Activity",
}


@dataclass(frozen=True, slots=True)
class Compiled:
    """A field rule with everything resolved at load time."""

    rule: FieldRule
    resource: str
    py_type: type  # domain type of one value (list item type for list fields)
    is_list: bool  # the domain field holds a list
    table: CodeTable | None
    prefix: str  # identifier prefix of the mapping
    # concept -> the resource type it is referenced by (the mapping files' plan; see loader)
    primary_resources: Mapping[str, str] = field(default_factory=dict)
    # record: the compiled rules of the item's own fields (engine rules, hence Any here)
    parts: tuple[Any, ...] = ()

    def fail(self, reason: str) -> ValueError:
        return ValueError(f"{self.rule.element}: {reason}")


class Transform:
    """Base: scalar values that need no conversion beyond JSON."""

    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        return value

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        return element

    def claims(self, element: Any, c: Compiled, ctx: MappingContext) -> bool:
        """Whether an existing element (or list item) is ours to replace or remove."""
        return True


class _String(Transform):
    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        if not isinstance(element, str):
            raise c.fail(f"expected a string, got {type(element).__name__}")
        return element


class _Boolean(Transform):
    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        if not isinstance(element, bool):
            raise c.fail("expected true or false")
        return element


class _Date(Transform):
    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        return value.isoformat()

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        # A dateTime in a date field keeps its calendar date; the original text is preserved on
        # the way back because the engine keeps an existing element that maps to the same value.
        try:
            return date.fromisoformat(str(element)[:10])
        except ValueError as exc:
            raise c.fail(f"'{element}' is not a date") from exc


class _DateTime(Transform):
    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        if value.tzinfo is None:
            raise c.fail("times must carry a time zone")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        text = str(element)
        try:
            if len(text) <= 10:
                # FHIR allows partial dateTimes; read them as the start of that day in UTC.
                parts = [int(p) for p in text.split("-")] + [1, 1]
                return datetime(parts[0], parts[1], parts[2], tzinfo=UTC)
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise c.fail(f"'{element}' is not a dateTime") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Decimal(Transform):
    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        return _json_number(value)

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        try:
            return Decimal(str(element))
        except InvalidOperation as exc:
            raise c.fail(f"'{element}' is not a number") from exc


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


class _Integer(Transform):
    """A whole number (a charge's units): written as a JSON integer, read back only if whole."""

    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        return int(value)

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        try:
            number = Decimal(str(element))
        except InvalidOperation as exc:
            raise c.fail(f"'{element}' is not a number") from exc
        if isinstance(element, bool) or number != number.to_integral_value():
            raise c.fail(f"'{element}' is not a whole number")
        return int(number)


class _Code(Transform):
    """An enum as a FHIR code: the member's value, or its entry in a code table."""

    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        return c.table.code_for(value) if c.table else str(value.value)

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        member = _enum_from_code(c, str(element))
        if member is None:
            raise c.fail(f"code '{element}' has no equivalent in {c.py_type.__name__}")
        return member

    def claims(self, element: Any, c: Compiled, ctx: MappingContext) -> bool:
        return _enum_from_code(c, str(element)) is not None


def _enum_from_code(c: Compiled, code: str) -> StrEnum | None:
    if c.table is not None:
        return c.table.member_for_code(code)
    try:
        member = c.py_type(code)
    except ValueError:
        return None
    return member if isinstance(member, StrEnum) else None


class _Coding(Transform):
    """A single Coding element (e.g. Encounter.class), from a table or a domain Code."""

    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        if c.table is not None:
            return c.table.codings_for(value)[0]
        return ctx.terminology.coding(_checked_code(value, c))

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        return _value_of_coding(element, c, ctx)

    def claims(self, element: Any, c: Compiled, ctx: MappingContext) -> bool:
        return isinstance(element, dict) and _value_of_coding(element, c, ctx) is not None


def _checked_code(value: Any, c: Compiled) -> Code:
    if not isinstance(value, Code):
        raise c.fail(f"expected a Code, got {type(value).__name__}")
    if c.rule.systems is not None and value.system not in c.rule.systems:
        raise c.fail(f"code system '{value.system}' not allowed here ({', '.join(c.rule.systems)})")
    return value


def _value_of_coding(coding: Any, c: Compiled, ctx: MappingContext) -> Any:
    if not isinstance(coding, dict):
        return None
    if c.table is not None:
        return c.table.member_for_coding(coding)
    code = ctx.terminology.code(coding)
    if code is None or (c.rule.systems is not None and code.system not in c.rule.systems):
        return None
    return code


class _Concept(Transform):
    """A CodeableConcept. Only codings of our table or systems are ours; others are kept."""

    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        base = dict(existing) if isinstance(existing, dict) else {}
        theirs = [
            coding for coding in base.get("coding", []) if _value_of_coding(coding, c, ctx) is None
        ]
        ours: list[dict[str, str]] = []
        if value is not None:
            if c.table is not None:
                ours = c.table.codings_for(value)
            else:
                ours = [ctx.terminology.coding(_checked_code(value, c))]
        codings = ours + theirs
        if codings:
            base["coding"] = codings
        else:
            base.pop("coding", None)
        return base or None

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        if not isinstance(element, dict):
            raise c.fail("expected a CodeableConcept")
        for coding in element.get("coding", []):
            found = _value_of_coding(coding, c, ctx)
            if found is not None:
                return found
        return None

    def claims(self, element: Any, c: Compiled, ctx: MappingContext) -> bool:
        return isinstance(element, dict) and any(
            _value_of_coding(coding, c, ctx) is not None for coding in element.get("coding", [])
        )


class _Reference(Transform):
    """A Reference to a local record (``concept``) or a raw reference string (``target``)."""

    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        base = dict(existing) if isinstance(existing, dict) else {}
        if c.rule.concept is not None:
            base["reference"] = ctx.references.reference(c.rule.concept, str(value))
            target = c.primary_resources.get(c.rule.concept)
            if base["reference"].startswith("urn:uuid:") and target is not None:
                # A placeholder inside a transaction says nothing of what it points at; the
                # type lets profile checks run on the bundle entry as it will be sent.
                base["type"] = target
        else:
            base["reference"] = str(value)
        return base

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        ref = element.get("reference") if isinstance(element, dict) else None
        if not isinstance(ref, str):
            return None
        if c.rule.concept is not None:
            return ctx.references.local_id(c.rule.concept, ref)
        return ref if self.claims(element, c, ctx) else None

    def claims(self, element: Any, c: Compiled, ctx: MappingContext) -> bool:
        ref = element.get("reference") if isinstance(element, dict) else None
        if not isinstance(ref, str):
            return False
        if c.rule.concept is not None:
            return ctx.references.local_id(c.rule.concept, ref) is not None
        return c.rule.target is None or ref.split("/")[-2:-1] == [c.rule.target]


class _Identifier(Transform):
    """Our business identifier: system = the installation's, value = "<prefix>/<local id>"."""

    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        base = dict(existing) if isinstance(existing, dict) else {}
        base.update({"system": ctx.identifier_system, "value": f"{c.prefix}/{value}"})
        return base

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        return str(element["value"]).removeprefix(f"{c.prefix}/")

    def claims(self, element: Any, c: Compiled, ctx: MappingContext) -> bool:
        return (
            isinstance(element, dict)
            and element.get("system") == ctx.identifier_system
            and str(element.get("value", "")).startswith(f"{c.prefix}/")
        )


_TAGS = re.compile(r"<[^>]+>")


class _Narrative(Transform):
    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in str(value).split("\n"))
        return {"status": "generated", "div": f'<div xmlns="{XHTML_NS}">{paragraphs}</div>'}

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        div = element.get("div", "") if isinstance(element, dict) else ""
        paragraphs = re.findall(r"<p>(.*?)</p>", div, flags=re.DOTALL)
        if paragraphs and re.fullmatch(r"<div[^>]*>(<p>.*?</p>)*</div>", div, flags=re.DOTALL):
            return "\n".join(html.unescape(p) for p in paragraphs)
        text = html.unescape(_TAGS.sub(" ", div))
        return " ".join(text.split()) or None


class _Quantity(Transform):
    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        out: dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
        out["value"] = _json_number(value)
        return out

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        if not isinstance(element, dict) or "value" not in element:
            return None
        return Decimal(str(element["value"]))


class _Minutes(Transform):
    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        return {"value": int(value), "unit": "min", "system": UCUM, "code": "min"}

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        if not isinstance(element, dict) or "value" not in element:
            raise c.fail("a Duration needs a value")
        factor = {"min": 1, "h": 60, "s": 1 / 60}.get(str(element.get("code", "min")))
        if factor is None:
            raise c.fail(f"unsupported duration unit '{element.get('code')}'")
        return round(float(element["value"]) * factor)


_EXTENSION_VALUE = {
    "code": "valueCode",
    "boolean": "valueBoolean",
    "reference": "valueReference",
    "concept": "valueCodeableConcept",
    "date": "valueDate",
}


class _Extension(Transform):
    """One of our extensions (url alias from codesystems.yaml) on a list of extensions."""

    def _inner(self, c: Compiled) -> Transform:
        kind = c.rule.value or "code"
        return TRANSFORMS["concept" if kind == "concept" else kind]

    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        kind = c.rule.value or "code"
        key = _EXTENSION_VALUE[kind]
        prior = existing.get(key) if isinstance(existing, dict) else None
        url = ctx.terminology.extensions[str(c.rule.url)]
        return {"url": url, key: self._inner(c).to_fhir(value, prior, c, ctx)}

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        key = _EXTENSION_VALUE[c.rule.value or "code"]
        return self._inner(c).from_fhir(element.get(key), c, ctx)

    def claims(self, element: Any, c: Compiled, ctx: MappingContext) -> bool:
        url = ctx.terminology.extensions[str(c.rule.url)]
        return isinstance(element, dict) and element.get("url") == url


class _TaskOutput(Transform):
    """Gravity: Task.output typed ``resulting-activity`` with a code or a reference."""

    def to_fhir(self, value: Any, existing: Any, c: Compiled, ctx: MappingContext) -> Any:
        out: dict[str, Any] = {"type": {"coding": [dict(RESULTING_ACTIVITY)]}}
        if c.rule.value == "reference":
            out["valueReference"] = {"reference": str(value)}
        else:
            out["valueCodeableConcept"] = {"coding": [ctx.terminology.coding(value)]}
        return out

    def from_fhir(self, element: Any, c: Compiled, ctx: MappingContext) -> Any:
        if c.rule.value == "reference":
            return element["valueReference"]["reference"]
        for coding in element["valueCodeableConcept"].get("coding", []):
            code = ctx.terminology.code(coding)
            if code is not None:
                return code
        raise c.fail("resulting activity uses no known code system")

    def claims(self, element: Any, c: Compiled, ctx: MappingContext) -> bool:
        if not isinstance(element, dict):
            return False
        typed = any(
            cd.get("code") == RESULTING_ACTIVITY["code"]
            for cd in (element.get("type") or {}).get("coding", [])
        )
        key = "valueReference" if c.rule.value == "reference" else "valueCodeableConcept"
        return typed and key in element


TRANSFORMS: dict[str, Transform] = {
    "identifier": _Identifier(),
    "string": _String(),
    "boolean": _Boolean(),
    "date": _Date(),
    "datetime": _DateTime(),
    "decimal": _Decimal(),
    "integer": _Integer(),
    "code": _Code(),
    "coding": _Coding(),
    "concept": _Concept(),
    "reference": _Reference(),
    "extension": _Extension(),
    "narrative": _Narrative(),
    "quantity": _Quantity(),
    "minutes": _Minutes(),
    "task_output": _TaskOutput(),
}
