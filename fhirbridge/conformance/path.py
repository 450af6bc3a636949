"""Dotted FHIR element paths (``category.coding``, ``occurrence[x]``) and a walker over JSON.

A path names elements the way the FHIR JSON does, one segment per nesting level. Lists are
traversed transparently, so ``category.coding`` yields every coding of every category. A
segment ending in ``[x]`` is a choice element: ``occurrence[x]`` matches ``occurrenceDateTime``,
``occurrencePeriod`` and the other typed variants actually present.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = [
    "CHOICE_SUFFIX",
    "Accessor",
    "ElementPath",
    "InvalidElementPath",
    "accessor",
    "is_present",
    "resolve",
]

CHOICE_SUFFIX = "[x]"
_SEGMENT = re.compile(r"[a-z][A-Za-z0-9]*(\[x\])?")


class InvalidElementPath(ValueError):
    """A path that is not a dotted sequence of FHIR element names."""

    def __init__(self, text: str, *, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"invalid element path {text!r}: {reason}")


@dataclass(frozen=True, slots=True)
class ElementPath:
    segments: tuple[str, ...]

    @staticmethod
    def parse(text: str) -> ElementPath:
        return _parse(text)

    def __str__(self) -> str:
        return ".".join(self.segments)

    def joined(self, other: ElementPath) -> ElementPath:
        return ElementPath(self.segments + other.segments)


@cache
def _parse(text: str) -> ElementPath:
    if not text:
        raise InvalidElementPath(text, reason="empty")
    segments = tuple(text.split("."))
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise InvalidElementPath(
                text,
                reason=f"segment {segment!r} is not an element name "
                "(lowerCamelCase letters and digits, optionally ending in [x])",
            )
    return ElementPath(segments)


def is_present(value: Any) -> bool:
    """FHIR has no empty elements: an empty string, list or object counts as absent.

    A truthy value is always present (``value or is_present(value)`` saves the call).
    """
    if value is None:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def resolve(node: Mapping[str, Any], path: ElementPath) -> list[Any]:
    """Every present value at ``path`` below ``node``, lists flattened, in document order."""
    return accessor(path)(node)


Accessor = Callable[[Mapping[str, Any]], list[Any]]
_Step = Callable[[Any], list[Any]]


@cache
def accessor(path: ElementPath) -> Accessor:
    """``resolve`` for one path, built once: the rules read the same few paths of every
    resource, so each path's segments are turned into steps ahead of time."""
    steps = tuple(_step(segment) for segment in path.segments)
    first, rest = steps[0], steps[1:]
    if not rest:
        return first

    def walk(node: Mapping[str, Any]) -> list[Any]:
        current = first(node)
        for step in rest:
            if not current:
                break
            following: list[Any] = []
            for item in current:
                following += step(item)
            current = following
        return current

    return walk


def _step(segment: str) -> _Step:
    """The present values of one segment below one item (nothing below a non-object)."""
    if not segment.endswith(CHOICE_SUFFIX):

        def child(item: Any) -> list[Any]:
            # type() first: the values are JSON dicts and lists, and the ABC check is slow.
            if type(item) is not dict and not isinstance(item, Mapping):
                return []
            value = item.get(segment)
            if value is None:
                return []
            if type(value) is list or isinstance(value, list):
                return [entry for entry in value if entry or is_present(entry)]
            return [value] if value or is_present(value) else []

        return child
    stem = segment[: -len(CHOICE_SUFFIX)]
    after = len(stem)

    def choice(item: Any) -> list[Any]:
        if type(item) is not dict and not isinstance(item, Mapping):
            return []
        found: list[Any] = []
        for key, value in item.items():
            # The typed variant is the stem followed by a capitalised type name (valueQuantity).
            if key.startswith(stem) and len(key) > after and key[after].isupper():
                if isinstance(value, list):
                    found += [entry for entry in value if entry or is_present(entry)]
                elif value or is_present(value):
                    found.append(value)
        return found

    return choice
