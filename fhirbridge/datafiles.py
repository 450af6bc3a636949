"""Load declarative YAML data files with line numbers, so errors can name file and line.

Mappings, code tables, profile rules and billing rules are data. When one is wrong, the person
fixing it needs ``mappings/resources/goal.yaml:14`` rather than a stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["DataFileError", "LineDict", "LineList", "line_of", "load_yaml", "parse_model"]

M = TypeVar("M", bound=BaseModel)


class DataFileError(ValueError):
    """A declarative data file is malformed; names the file, the line and the reason."""

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {reason}")


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers the line it started on (1-based)."""

    line: int = 0


class LineList(list[Any]):
    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict(loader.construct_pairs(node, deep=True))
    result.line = node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_sequence(node, deep=True))
    result.line = node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path) -> Any:
    try:
        # _Loader derives from SafeLoader: no arbitrary object construction.
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise DataFileError(path, line, f"not valid YAML: {exc.problem}") from exc
    except OSError as exc:
        raise DataFileError(path, None, f"cannot read: {exc.strerror}") from exc


def line_of(data: Any, loc: Sequence[int | str]) -> int | None:
    """The line of the deepest node on ``loc`` that carries one."""
    line = getattr(data, "line", None)
    node = data
    for key in loc:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
        line = getattr(node, "line", line)
    return line


def parse_model(model: type[M], data: Any, path: Path) -> M:
    """Validate ``data`` (from ``load_yaml``) against ``model``; errors name file and line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        where = ".".join(str(p) for p in loc) or "(top level)"
        raise DataFileError(path, line_of(data, loc), f"{where}: {first['msg']}") from exc
