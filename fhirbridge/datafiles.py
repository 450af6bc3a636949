"""Read declarative YAML data files so that errors can name file and line.

Mappings, code tables, profile rules and billing rules are data. When one is wrong, the person
fixing it needs ``mappings/resources/goal.yaml:14`` rather than a stack trace. Every loader of
such files reads them through ``read_yaml``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["DataFileError", "Location", "YamlDocument", "parse_model", "read_yaml"]

M = TypeVar("M", bound=BaseModel)
Location = tuple[str | int, ...]


class DataFileError(ValueError):
    """A declarative data file is malformed; names the file, the line and the reason."""

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class YamlDocument:
    """A parsed file and the 1-based line of every key and list item in it."""

    path: Path
    data: Any
    lines: Mapping[Location, int]

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the deepest part of ``loc`` written in the file.

        Parts that are not in the file (a pydantic union tag, a missing key) are skipped.
        """
        best: Location = ()
        for part in loc:
            candidate = (*best, part)
            if candidate in self.lines:
                best = candidate
        return self.lines.get(best)


_FAST_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)


def read_yaml(path: Path) -> YamlDocument:
    """Parse ``path`` (safe loader), refusing empty files and repeated keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(path, None, f"cannot read: {exc.strerror}") from exc
    if _FAST_LOADER is yaml.SafeLoader:
        return _parse(path, text, yaml.SafeLoader)
    try:
        # libyaml parses the mapping and profile files about ten times faster: most of what
        # loading them cost at start-up.
        return _parse(path, text, _FAST_LOADER)
    except (DataFileError, yaml.YAMLError):
        # The pure-Python loader words its errors the way our messages and docs quote them.
        return _parse(path, text, yaml.SafeLoader)


def _parse(
    path: Path, text: str, loader_class: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
) -> YamlDocument:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise DataFileError(path, 1, "the file is empty")
        lines: dict[Location, int] = {(): node.start_mark.line + 1}
        for repeated_at, key in _record_lines(node, (), lines):
            # PyYAML keeps the last of two equal keys without a word; that hides mistakes.
            raise DataFileError(path, repeated_at, f"key {key!r} appears twice (duplicate key)")
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise DataFileError(path, line, f"not valid YAML: {exc.problem}") from exc
    finally:
        loader.dispose()
    return YamlDocument(path, data, lines)


def _record_lines(
    node: yaml.Node, loc: Location, lines: dict[Location, int]
) -> Iterator[tuple[int, Any]]:
    """Fill ``lines``; yield (line, key) of each repeated key.

    A mapping entry gets the line of its key, which is where a reader looks for it.
    """
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen and key != "<<":
                yield key_node.start_mark.line + 1, key
            seen.add(key)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            yield from _record_lines(value_node, (*loc, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            yield from _record_lines(item, (*loc, index), lines)


def parse_model(model: type[M], document: YamlDocument) -> M:
    """Validate a document against ``model``; the error names file and line."""
    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        where = ".".join(str(p) for p in loc) or "(top level)"
        raise DataFileError(
            document.path, document.line_of(loc), f"{where}: {first['msg']}"
        ) from exc
