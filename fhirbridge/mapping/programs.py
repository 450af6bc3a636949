"""What an enrollment must name before its program's time can be billed
(``mappings/programs.yaml``), loaded and checked at start-up with the other mapping files.

Every program of ``domain.Program`` has an entry (an empty one states that the program asks
nothing of the enrollment), so a new program cannot go unchecked by oversight. An entry may ask
for a number of conditions (``conditions: {at_least, named}``, ``named`` being how the rule words
them) and for fields to be filled in (``required``, from ``REQUIRABLE_FIELDS``). The rules hold
for enrollments in ``checked_statuses``. ``verify`` and ``source`` document where a rule comes
from; an installation overrides a rule by editing its copy of the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fhirbridge.datafiles import DataFileError, parse_model, read_yaml
from fhirbridge.domain.enrollment import (
    REQUIRABLE_FIELDS,
    EnrollmentPrerequisites,
    EnrollmentStatus,
    Program,
    ProgramPrerequisites,
)

__all__ = ["PROGRAMS_FILE", "load_programs"]

PROGRAMS_FILE = "programs.yaml"

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionsRule(_Strict):
    at_least: int = Field(ge=1, le=20)
    named: _Text = "conditions"


class ProgramEntry(_Strict):
    conditions: ConditionsRule | None = None
    required: list[str] = Field(default_factory=list)
    verify: bool = False
    source: str | None = None


class ProgramsFile(_Strict):
    checked_statuses: list[EnrollmentStatus] = Field(min_length=1)
    programs: dict[str, ProgramEntry]


def load_programs(root: Path) -> EnrollmentPrerequisites:
    """``root/programs.yaml``; a wrong file raises ``DataFileError`` naming file and line."""
    document = read_yaml(root / PROGRAMS_FILE)
    spec = parse_model(ProgramsFile, document)
    path = document.path
    known = {p.value: p for p in Program}
    rules: dict[Program, ProgramPrerequisites] = {}
    for name, entry in spec.programs.items():
        line = document.line_of(["programs", name])
        program = known.get(name)
        if program is None:
            raise DataFileError(path, line, f"'{name}' is not a program ({', '.join(known)})")
        for i, required in enumerate(entry.required):
            where = document.line_of(["programs", name, "required", i])
            if required not in REQUIRABLE_FIELDS:
                fields = ", ".join(REQUIRABLE_FIELDS)
                raise DataFileError(path, where, f"cannot require '{required}' (one of {fields})")
            if entry.required.index(required) != i:
                raise DataFileError(path, where, f"'{required}' is required twice")
        conditions = entry.conditions
        rules[program] = ProgramPrerequisites(
            program=program,
            min_conditions=0 if conditions is None else conditions.at_least,
            conditions_named="conditions" if conditions is None else conditions.named,
            required=tuple(entry.required),
        )
    missing = [p.value for p in Program if p not in rules]
    if missing:
        line = document.line_of(["programs"])
        raise DataFileError(path, line, f"no entry for program(s) {', '.join(missing)}")
    return EnrollmentPrerequisites(frozenset(spec.checked_statuses), rules)
