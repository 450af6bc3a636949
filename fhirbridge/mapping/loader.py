"""Load every mapping file under ``mappings/`` at start-up and check it thoroughly.

A file that names an unknown domain field, FHIR element, code system, code table, extension
or concept fails here, with its path and line, before any record is mapped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fhirbridge.datafiles import DataFileError, YamlDocument, parse_model, read_yaml
from fhirbridge.domain.codes import Code
from fhirbridge.domain.enrollment import EnrollmentPrerequisites
from fhirbridge.mapping.codes import CodeTable, Terminology
from fhirbridge.mapping.concepts import CONCEPTS, ENUMS, LINKED_CONCEPTS
from fhirbridge.mapping.elements import UnknownElement, resolve
from fhirbridge.mapping.engine import RECORD, ResourceMapping, _Fixed, _Rule, field_type
from fhirbridge.mapping.inbound import INBOUND_FILE, InboundRules, load_inbound
from fhirbridge.mapping.instruments import Instruments, load_instruments
from fhirbridge.mapping.plan import SyncPlan
from fhirbridge.mapping.programs import load_programs
from fhirbridge.mapping.schema import (
    CodeSystemsFile,
    CodeTableFile,
    FieldRule,
    ResourceMappingFile,
)
from fhirbridge.mapping.transforms import TRANSFORMS, Compiled

__all__ = ["Mappings", "load_mappings"]

# Which transforms make sense for which kind of domain value.
_ENUM_TRANSFORMS = {"code", "coding", "concept", "extension"}
_LIST_TRANSFORMS = {
    "identifier",
    "concept",
    "reference",
    "extension",
    "task_output",
    "coding",
    "record",
}


@dataclass(frozen=True)
class Mappings:
    terminology: Terminology
    resources: tuple[ResourceMapping, ...]
    plan: SyncPlan
    # Which other systems' resources become records (inbound.yaml); none without the file.
    inbound: InboundRules = field(default_factory=lambda: InboundRules({}))
    # What an enrollment must name per program (programs.yaml, which load_mappings requires).
    programs: EnrollmentPrerequisites = field(
        default_factory=lambda: EnrollmentPrerequisites(frozenset(), {})
    )
    # Assessment instruments (instruments/*.yaml); none without the folder.
    instruments: Instruments = field(default_factory=lambda: Instruments({}))

    def for_concept(self, concept: str) -> tuple[ResourceMapping, ...]:
        return tuple(m for m in self.resources if m.concept == concept)

    def get(self, concept: str, resource: str) -> ResourceMapping:
        for m in self.resources:
            if m.concept == concept and m.resource == resource:
                return m
        raise KeyError(f"no mapping of {concept} to {resource}")


def load_mappings(root: Path) -> Mappings:
    terminology = _load_terminology(root)
    files = sorted((root / "resources").glob("*.yaml"))
    if not files:
        raise DataFileError(root / "resources", None, "no resource mappings found")
    documents = [read_yaml(path) for path in files]
    # Reference rules need the resource type each concept is referenced by, which only the
    # plan of all files knows; they get a view of this table, filled once the plan is built.
    primary_resources: dict[str, str] = {}
    view = MappingProxyType(primary_resources)
    resources = tuple(_load_resource(raw, terminology, view) for raw in documents)
    seen: dict[tuple[str, str], Path] = {}
    for path, mapping in zip(files, resources, strict=True):
        key = (mapping.concept, mapping.resource)
        if key in seen:
            raise DataFileError(path, 1, f"{key[0]} -> {key[1]} is also mapped in {seen[key]}")
        seen[key] = path
    plan = _sync_plan(documents, resources)
    primary_resources.update(plan.primary_resources)
    loaded = Mappings(
        terminology,
        resources,
        plan,
        programs=load_programs(root),
        instruments=load_instruments(root, systems=terminology.systems),
    )
    if not (root / INBOUND_FILE).exists():
        return loaded
    return dataclasses.replace(loaded, inbound=load_inbound(root, loaded))


def _sync_plan(documents: list[YamlDocument], resources: tuple[ResourceMapping, ...]) -> SyncPlan:
    """The push plan from the files' ``primary:`` and ``after:`` keys (see mapping.plan)."""
    files = list(zip(documents, resources, strict=True))
    by_concept: dict[str, list[tuple[YamlDocument, ResourceMapping]]] = {}
    for raw, mapping in files:
        by_concept.setdefault(mapping.concept, []).append((raw, mapping))
    targets: dict[str, tuple[str, ...]] = {}
    for concept, mapped in by_concept.items():
        primaries = [(raw, mapping) for raw, mapping in mapped if mapping.primary]
        if not primaries:
            raw = mapped[0][0]
            names = ", ".join(str(r.path) for r, _ in mapped)
            raise DataFileError(
                raw.path,
                raw.line_of(["primary"]),
                f"concept '{concept}' has no mapping with 'primary: true' (mapped in {names})",
            )
        if len(primaries) > 1:
            (first, _), (raw, _) = primaries[0], primaries[1]
            raise DataFileError(
                raw.path,
                raw.line_of(["primary"]),
                f"concept '{concept}' already has its primary resource in {first.path}; "
                "mark one of them 'primary: false'",
            )
        others = sorted(mapping.resource for _, mapping in mapped if not mapping.primary)
        targets[concept] = (primaries[0][1].resource, *others)
    after: dict[str, set[str]] = {concept: set() for concept in targets}
    for raw, mapping in files:
        for i, name in enumerate(mapping.after):
            line = raw.line_of(["after", i])
            if name == mapping.concept:
                raise DataFileError(raw.path, line, f"'{name}' cannot come after itself")
            if name not in targets:
                raise DataFileError(raw.path, line, f"'after' names unmapped concept '{name}'")
            after[mapping.concept].add(name)
    ranks: dict[str, int] = {}
    while len(ranks) < len(after):
        ready = sorted(c for c, deps in after.items() if c not in ranks and deps <= ranks.keys())
        if not ready:
            raise _cycle_error(files, after, ranks.keys())
        for concept in ready:
            ranks[concept] = len(ranks)
    return SyncPlan(targets, ranks)


def _cycle_error(
    files: list[tuple[YamlDocument, ResourceMapping]],
    after: dict[str, set[str]],
    ranked: Collection[str],
) -> DataFileError:
    """Names one cycle among the concepts that could not be ranked, at an 'after' item in it.
    Every such concept waits for another such concept, so walking their waits always loops."""
    concept = min(c for c in after if c not in ranked)
    path: list[str] = []
    while concept not in path:
        path.append(concept)
        concept = min(d for d in after[concept] if d not in ranked)
    cycle = [*path[path.index(concept) :], concept]
    first, second = cycle[0], cycle[1]
    for raw, mapping in files:
        if mapping.concept == first and second in mapping.after:
            line = raw.line_of(["after", mapping.after.index(second)])
            return DataFileError(
                raw.path, line, f"'after' keys form a cycle: {' after '.join(cycle)}"
            )
    raise AssertionError(f"no file says '{first}' comes after '{second}'")  # pragma: no cover


def _load_terminology(root: Path) -> Terminology:
    path = root / "codesystems.yaml"
    systems = parse_model(CodeSystemsFile, read_yaml(path))
    tables: dict[str, CodeTable] = {}
    for table_path in sorted((root / "codes").glob("*.yaml")):
        document = read_yaml(table_path)
        spec = parse_model(CodeTableFile, document)
        tables[spec.table] = _compile_table(spec, document, systems)
    return Terminology(dict(systems.systems), dict(systems.extensions), tables)


def _compile_table(spec: CodeTableFile, raw: YamlDocument, systems: CodeSystemsFile) -> CodeTable:
    path = raw.path
    enum = ENUMS.get(spec.enum)
    if enum is None:
        raise DataFileError(path, raw.line_of(["enum"]), f"unknown domain enum '{spec.enum}'")
    members = {m.value: m for m in enum}
    for key in spec.entries:
        if key not in members:
            line = raw.line_of(["entries", key])
            raise DataFileError(path, line, f"'{key}' is not a member of {spec.enum}")
    uncovered = sorted(set(members) - set(spec.entries))
    if uncovered:
        line = raw.line_of(["entries"])
        raise DataFileError(path, line, f"no entry for {spec.enum} member(s) {uncovered}")
    codes: dict[StrEnum, str] = {}
    codings: dict[StrEnum, tuple[dict[str, str], ...]] = {}
    counts: dict[tuple[str, str], int] = {}
    for key, entry in spec.entries.items():
        member = members[key]
        line = raw.line_of(["entries", key])
        if spec.kind == "code":
            if not isinstance(entry, str):
                raise DataFileError(path, line, "a 'code' table maps each member to a code")
            codes[member] = entry
            continue
        if isinstance(entry, str) or not entry:
            raise DataFileError(path, line, "a 'codings' table maps each member to codings")
        built = []
        for coding in entry:
            if coding.system not in systems.systems:
                raise DataFileError(path, line, f"unknown code system '{coding.system}'")
            uri = systems.systems[coding.system]
            item = {"system": uri, "code": coding.code}
            if coding.display:
                item["display"] = coding.display
            built.append(item)
            counts[(uri, coding.code)] = counts.get((uri, coding.code), 0) + 1
        codings[member] = tuple(built)
    reverse: dict[tuple[str, str], StrEnum] = {}
    for member, items in codings.items():
        unique = [(c["system"], c["code"]) for c in items if counts[(c["system"], c["code"])] == 1]
        if not unique:
            line = raw.line_of(["entries", member.value])
            raise DataFileError(path, line, f"'{member.value}' has no coding of its own")
        for pair in unique:
            reverse[pair] = member
    return CodeTable(spec.table, enum, spec.kind, codes, codings, reverse)


def _load_resource(
    raw: YamlDocument, terminology: Terminology, primary_resources: Mapping[str, str]
) -> ResourceMapping:
    path = raw.path
    spec = parse_model(ResourceMappingFile, raw)
    cls = CONCEPTS.get(spec.concept)
    if cls is None:
        line = raw.line_of(["concept"])
        raise DataFileError(path, line, f"unknown concept '{spec.concept}'")
    try:
        resolve(spec.resource, "id")
    except (UnknownElement, KeyError, ValueError) as exc:
        line = raw.line_of(["resource"])
        raise DataFileError(path, line, f"unknown FHIR resource '{spec.resource}'") from exc
    fixed = []
    for i, fixed_rule in enumerate(spec.fixed):
        line = raw.line_of(["fixed", i])
        element = _resolve(spec.resource, fixed_rule.element, path, line)
        coding = None
        if fixed_rule.coding is not None:
            spec_coding = fixed_rule.coding
            if spec_coding.system not in terminology.systems:
                raise DataFileError(path, line, f"unknown code system '{spec_coding.system}'")
            coding = {"system": terminology.uri(spec_coding.system), "code": spec_coding.code}
            if spec_coding.display:
                coding["display"] = spec_coding.display
        fixed.append(_Fixed(element, fixed_rule.value, coding))
    rules = []
    for i, field_rule in enumerate(spec.fields):
        line = raw.line_of(["fields", i])
        rules.append(
            _compile_rule(field_rule, spec, cls, terminology, primary_resources, path, line)
        )
    return ResourceMapping(
        concept=spec.concept,
        resource=spec.resource,
        profile=spec.profile,
        identifier_prefix=spec.identifier_prefix,
        source=str(path),
        rules=tuple(rules),
        fixed=tuple(fixed),
        primary=spec.primary,
        after=tuple(spec.after),
    )


def _resolve(resource: str, element: str, path: Path, line: int | None) -> Any:
    try:
        return resolve(resource, element)
    except UnknownElement as exc:
        raise DataFileError(path, line, f"unknown FHIR element {exc}") from exc


def _compile_rule(
    rule: FieldRule,
    spec: ResourceMappingFile,
    cls: type,
    terminology: Terminology,
    primary_resources: Mapping[str, str],
    path: Path,
    line: int | None,
) -> _Rule:
    def fail(reason: str) -> DataFileError:
        return DataFileError(path, line, f"field '{rule.field}': {reason}")

    try:
        py_type, is_list, _ = field_type(cls, rule.field)
    except KeyError:
        raise fail(f"{cls.__name__} has no field '{rule.field}'") from None
    for companion in (rule.text_from, rule.display_from, rule.unit_from):
        if companion is not None:
            try:
                field_type(cls, companion)
            except KeyError:
                raise fail(f"{cls.__name__} has no field '{companion}'") from None
    element = _resolve(spec.resource, rule.element, path, line)
    if (rule.transform == "record") != (rule.fields is not None):
        raise fail("'fields' go with 'transform: record', and it needs them")
    in_list = element.each_at is not None or element.leaf_is_list
    if is_list and not in_list:
        raise fail(f"a list field needs a list element (or [*]), '{rule.element}' is single")
    if in_list and rule.transform not in _LIST_TRANSFORMS:
        raise fail(f"transform '{rule.transform}' cannot fill the list '{rule.element}'")
    table = None
    if rule.table is not None:
        table = terminology.tables.get(rule.table)
        if table is None:
            raise fail(f"unknown code table '{rule.table}'")
        if table.enum is not py_type:
            raise fail(f"table '{rule.table}' is for {table.enum.__name__}, not {py_type.__name__}")
    is_enum = isinstance(py_type, type) and issubclass(py_type, StrEnum)
    if is_enum and rule.transform not in _ENUM_TRANSFORMS:
        raise fail(f"an enum field cannot use transform '{rule.transform}'")
    if rule.transform in {"coding", "concept"} and table is None and py_type is not Code:
        raise fail("needs a code 'table' (enum field) or a Code field with 'systems'")
    for system in rule.systems or []:
        if system not in terminology.systems:
            raise fail(f"unknown code system '{system}'")
    if rule.transform == "reference" and (rule.concept is None) == (rule.target is None):
        raise fail("a reference names either 'concept' (local record) or 'target' (FHIR type)")
    if rule.concept is not None and rule.concept not in CONCEPTS.keys() | LINKED_CONCEPTS:
        raise fail(f"unknown concept '{rule.concept}'")
    if rule.transform == "extension" and rule.url not in terminology.extensions:
        raise fail(f"unknown extension '{rule.url}'")
    parts: tuple[_Rule, ...] = ()
    if rule.fields is not None:
        if not (is_list and dataclasses.is_dataclass(py_type)):
            raise fail("transform 'record' maps a list of records")
        inner = spec.model_copy(update={"resource": element.leaf_type})
        parts = tuple(
            _compile_rule(part, inner, py_type, terminology, primary_resources, path, line)
            for part in rule.fields
        )
    compiled = Compiled(
        rule=rule,
        resource=spec.resource,
        py_type=py_type,
        is_list=is_list,
        table=table,
        prefix=spec.identifier_prefix,
        primary_resources=primary_resources,
        parts=parts,
    )
    transform = RECORD if rule.transform == "record" else TRANSFORMS[rule.transform]
    return _Rule(compiled, element, transform)
