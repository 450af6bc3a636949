"""FHIR element paths in mapping files, and their check against the R4B models.

A path is dot-separated element names; a segment may carry ``[n]`` (that item of a list) or
``[*]`` (every item: the domain field is a list, one item each). Paths are checked against the
``fhir.resources.R4B`` model of the resource so that a typo fails at start-up, not at push time.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

__all__ = ["ElementPath", "Segment", "UnknownElement", "parse_path", "resolve"]

_SEGMENT = re.compile(r"^(?P<name>[a-zA-Z][a-zA-Z0-9]*)(?:\[(?P<index>\d+|\*)\])?$")


class UnknownElement(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    index: int | None = None  # [n]
    each: bool = False  # [*]


@dataclass(frozen=True, slots=True)
class ElementPath:
    text: str
    segments: tuple[Segment, ...]
    leaf_is_list: bool  # the last element is 0..* in FHIR (and carries no index)
    leaf_type: str  # FHIR type name of the last element ("CodeableConcept", "code", ...)
    # Position of the ``[*]`` segment, if any (asked for every record mapped: found once).
    each_at: int | None = field(init=False)

    def __post_init__(self) -> None:
        each = next((i for i, seg in enumerate(self.segments) if seg.each), None)
        object.__setattr__(self, "each_at", each)


def parse_path(text: str) -> tuple[Segment, ...]:
    segments = []
    for part in text.split("."):
        m = _SEGMENT.match(part)
        if m is None:
            raise UnknownElement(f"'{text}': malformed segment '{part}'")
        index = m.group("index")
        segments.append(
            Segment(
                name=m.group("name"),
                index=int(index) if index and index != "*" else None,
                each=index == "*",
            )
        )
    if sum(s.each for s in segments) > 1:
        raise UnknownElement(f"'{text}': at most one [*] segment")
    return tuple(segments)


@cache
def _model_fields(type_name: str) -> dict[str, tuple[str, bool]]:
    """Element name -> (FHIR type name, is list) for a resource or datatype."""
    model = get_fhir_model_class(type_name)
    hints = typing.get_type_hints(model, include_extras=True)
    fields: dict[str, tuple[str, bool]] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if not isinstance(extra, dict) or not extra.get("element_property"):
            continue
        fields[info.alias or name] = _describe(hints.get(name, info.annotation))
    return fields


def _describe(annotation: Any) -> tuple[str, bool]:
    text = str(annotation)
    is_list = "List[" in text or "list[" in text
    m = re.search(r"abc\.(\w+?)Type\b", text)
    if m:
        return m.group(1), is_list
    for primitive, name in (
        ("Code()", "code"),
        ("Date()", "date"),
        ("DateTime()", "dateTime"),
        ("Boolean", "boolean"),
        ("bool", "boolean"),
        ("Decimal", "decimal"),
        ("Xhtml", "xhtml"),
    ):
        if primitive in text:
            return name, is_list
    return "string", is_list


def resolve(resource_type: str, text: str) -> ElementPath:
    """Check ``text`` names a real element of ``resource_type``; raise UnknownElement if not."""
    segments = parse_path(text)
    current = resource_type
    is_list = False
    for i, seg in enumerate(segments):
        try:
            fields = _model_fields(current)
        except (KeyError, ValueError, AttributeError) as exc:
            raise UnknownElement(f"'{text}': '{current}' has no child elements") from exc
        if seg.name not in fields:
            raise UnknownElement(f"'{text}': {current} has no element '{seg.name}'")
        current, is_list = fields[seg.name]
        if (seg.index is not None or seg.each) and not is_list:
            raise UnknownElement(f"'{text}': {current} '{seg.name}' is not a list")
        if i < len(segments) - 1 and is_list and seg.index is None and not seg.each:
            raise UnknownElement(f"'{text}': '{seg.name}' is a list; say [0] or [*]")
    last = segments[-1]
    return ElementPath(
        text=text,
        segments=segments,
        leaf_is_list=is_list and last.index is None and not last.each,
        leaf_type=current,
    )
