"""Loading profile rule files: parse, validate against the schema and the R4B models, or fail fast.

Every problem is reported as a ProfileFileError naming the file and the line, so a broken file
stops start-up with a message pointing at what to fix rather than a rule that silently checks
nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fhirbridge.conformance.elements import UnknownElement, element_types, is_resource_type
from fhirbridge.conformance.errors import FileProblem, ProfileFileError
from fhirbridge.conformance.path import ElementPath
from fhirbridge.conformance.schema import Leaf, ProfileFile, ReferenceTargetRule
from fhirbridge.datafiles import DataFileError, Location, YamlDocument, read_yaml

__all__ = ["DEFAULT_PROFILES_DIR", "ProfileSet", "load_profile_file", "load_profiles"]

DEFAULT_PROFILES_DIR = Path(__file__).resolve().parents[2] / "mappings" / "profiles"


@dataclass(frozen=True, slots=True)
class ProfileSet:
    """All loaded profiles, looked up by the resource type they constrain."""

    profiles: tuple[ProfileFile, ...]

    def for_type(self, resource_type: str) -> tuple[ProfileFile, ...]:
        return tuple(p for p in self.profiles if p.resource_type == resource_type)

    def by_id(self, profile_id: str) -> ProfileFile:
        for profile in self.profiles:
            if profile.id == profile_id:
                return profile
        raise KeyError(profile_id)


def load_profiles(directory: Path = DEFAULT_PROFILES_DIR) -> ProfileSet:
    """Load every ``*.yaml`` in ``directory``; the first broken file raises ProfileFileError."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ProfileFileError(directory, [FileProblem(None, "no profile files (*.yaml) here")])
    return ProfileSet(tuple(load_profile_file(file) for file in files))


def load_profile_file(file: Path) -> ProfileFile:
    """Load one profile file; a file loaded before in this process is not parsed again.

    Parsing and checking a file (YAML with line numbers, the schema, every path against the
    R4B models) costs milliseconds, and checkers are built over the same files again and
    again (each command, the exporter, tests). The result, frozen, is kept per process keyed
    by the file's path and its bytes, so an edited file is always loaded afresh, however
    quickly it was rewritten; reading a file to compare costs microseconds. A broken file is
    never kept: its ProfileFileError is raised on every call.
    """
    try:
        content = file.read_bytes()
    except OSError:
        return _load_profile_file(file)  # reports the file as unreadable, naming it
    return _load_profile_file_cached(file, hashlib.sha256(content).digest())


@lru_cache(maxsize=256)
def _load_profile_file_cached(file: Path, _digest: bytes) -> ProfileFile:
    # The digest is part of the cache key only: a file with other content is a cache miss.
    return _load_profile_file(file)


def _load_profile_file(file: Path) -> ProfileFile:
    data, lines = _read_yaml(file)
    try:
        profile = ProfileFile.model_validate(data)
    except ValidationError as error:
        raise ProfileFileError(
            file,
            [
                FileProblem(_line_of(lines, tuple(e["loc"])), _describe(e, lines))
                for e in error.errors(include_url=False)
            ],
        ) from None
    problems = list(_semantic_problems(file, profile, lines))
    if problems:
        raise ProfileFileError(file, problems)
    return profile


def _semantic_problems(
    file: Path, profile: ProfileFile, lines: Mapping[Location, int]
) -> Iterator[FileProblem]:
    if profile.id != file.stem:
        yield FileProblem(
            _line_of(lines, ("id",)),
            f"id {profile.id!r} must equal the file name {file.stem!r}",
        )
    resource_type = profile.resource_type
    if not is_resource_type(resource_type):
        yield FileProblem(
            _line_of(lines, ("resource_type",)),
            f"{resource_type!r} is not an R4B resource type",
        )
        return
    for key in ("has_coding", "lacks_coding"):
        match = getattr(profile.applies_when, key)
        if match is not None:
            problem = _path_problem(resource_type, match.path, "Coding")
            if problem:
                yield FileProblem(_line_of(lines, ("applies_when", key, "path")), problem)
    seen: dict[str, int] = {}
    for index, rule in enumerate(profile.rules):
        here: Location = ("rules", index)
        if rule.id in seen:
            yield FileProblem(
                _line_of(lines, (*here, "id")),
                f"rule id {rule.id!r} is already used by rule #{seen[rule.id] + 1}",
            )
        seen.setdefault(rule.id, index)
        if rule.context is not None:
            problem = _path_problem(resource_type, rule.context, "any")
            if problem:
                yield FileProblem(_line_of(lines, (*here, "context")), problem)
                continue
        for use in rule.element_paths():
            full = f"{rule.context}.{use.path}" if rule.context else use.path
            problem = _path_problem(resource_type, full, use.leaf)
            if problem:
                yield FileProblem(
                    _line_of(lines, (*here, *use.loc)), f"rule {rule.id!r}: {problem}"
                )
        targets = rule.targets if isinstance(rule, ReferenceTargetRule) else []
        for position, target in enumerate(targets):
            if not is_resource_type(target):
                yield FileProblem(
                    _line_of(lines, (*here, "targets", position)),
                    f"rule {rule.id!r}: {target!r} is not an R4B resource type",
                )


def _path_problem(resource_type: str, path: str, leaf: Leaf) -> str | None:
    try:
        found = element_types(resource_type, ElementPath.parse(path))
    except UnknownElement as error:
        return f"unknown element {resource_type}.{path}: {error.reason}"
    if not any(_fits(type_name, leaf) for type_name in found):
        kinds = ", ".join(sorted(found))
        return f"{resource_type}.{path} is {kinds}, but the rule needs {leaf}"
    return None


def _fits(type_name: str, leaf: Leaf) -> bool:
    primitive = type_name[:1].islower()
    match leaf:
        case "any":
            return True
        case "primitive":
            return primitive
        case "primitive-or-Coding":
            return primitive or type_name == "Coding"
        case _:
            return type_name == leaf


def _describe(error: Mapping[str, Any], lines: Mapping[Location, int]) -> str:
    where = _render_loc(tuple(error["loc"]), lines)
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _render_loc(loc: Location, lines: Mapping[Location, int]) -> str:
    """``rules[2].path``: the location as written in the file, without union tags."""
    rendered = ""
    current: Location = ()
    for position, part in enumerate(loc):
        candidate = (*current, part)
        if candidate not in lines and position < len(loc) - 1:
            continue  # a discriminated-union tag such as "required"
        current = candidate
        rendered += f"[{part}]" if isinstance(part, int) else (f".{part}" if rendered else part)
    return rendered


def _read_yaml(file: Path) -> tuple[Any, Mapping[Location, int]]:
    try:
        document = read_yaml(file)
    except DataFileError as error:
        raise ProfileFileError(file, [FileProblem(error.line, error.reason)]) from None
    return document.data, document.lines


def _line_of(lines: Mapping[Location, int], loc: Sequence[str | int]) -> int | None:
    return YamlDocument(Path(), None, lines).line_of(loc)
