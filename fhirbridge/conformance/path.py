"""Dotted FHIR element paths (``category.coding``, ``occurrence[x]``) and a walker over JSON.

A path names elements the way the FHIR JSON does, one segment per nesting level. Lists are
traversed transparently, so ``category.coding`` yields every coding of every category. A
segment ending in ``[x]`` is a choice element: ``occurrence[x]`` matches ``occurrenceDateTime``,
``occurrencePeriod`` and the other typed variants actually present.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = ["CHOICE_SUFFIX", "ElementPath", "InvalidElementPath", "is_present", "resolve"]

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
    """FHIR has no empty elements: an empty string, list or object counts as absent."""
    if value is None:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def resolve(node: Mapping[str, Any], path: ElementPath) -> list[Any]:
    """Every present value at ``path`` below ``node``, lists flattened, in document order."""
    current: list[Any] = [node]
    for segment in path.segments:
        following: list[Any] = []
        for item in current:
            if isinstance(item, Mapping):
                for value in _children(item, segment):
                    following.extend(_flatten(value))
        current = following
    return current


def _children(item: Mapping[str, Any], segment: str) -> Iterator[Any]:
    if not segment.endswith(CHOICE_SUFFIX):
        if segment in item:
            yield item[segment]
        return
    stem = segment[: -len(CHOICE_SUFFIX)]
    for key, value in item.items():
        # The typed variant is the stem followed by a capitalised type name (valueQuantity).
        if key.startswith(stem) and len(key) > len(stem) and key[len(stem)].isupper():
            yield value


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for entry in value:
            if is_present(entry):
                yield entry
    elif is_present(value):
        yield value
