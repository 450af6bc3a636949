"""The schema of a billing rule-year file (``mappings/billing/cyYYYY.yaml``).

A rule year says, for one calendar year of the Medicare Physician Fee Schedule, which
care-management codes exist, how many minutes of whose time earn them, what must be on file
first, and which codes cannot be billed together. The engine in ``rollup`` reads nothing else:
a new year is a new file, not new code.

Structural checks live here (pydantic); checks that cross sections (an exclusion naming an
unknown code, two codes able to count the same minutes) live in ``loader`` so they can name
the file and line.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fhirbridge.domain.enrollment import Program
from fhirbridge.domain.people import StaffRole

__all__ = [
    "AddOn",
    "BillingCode",
    "CodeString",
    "DeclaredCode",
    "Exclusion",
    "ExclusionScope",
    "MonthPhase",
    "ProgramRule",
    "RuleYear",
    "Source",
    "TimedCode",
]

# CPT (five digits, or four and a letter) or HCPCS level II (a letter and four digits).
CodeString = Annotated[str, Field(pattern=r"^[0-9A-Z]{5}$")]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class _Flagged(_Rule):
    """A fact that may come from a secondary source and need checking by the practice."""

    verify: bool = False
    note: str | None = None
    sources: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _verify_needs_note(self) -> _Flagged:
        if self.verify and not (self.note and self.note.strip()):
            raise ValueError("verify: true needs a note saying what to check")
        return self


class Source(_Rule):
    title: str
    url: str | None = None


class MonthPhase(StrEnum):
    """Which months of an enrollment a code applies to (CoCM bills its first month apart)."""

    ANY = "any"
    FIRST = "first"  # the calendar month the enrollment starts in
    LATER = "later"


class ProgramRule(_Flagged):
    """What must be on file for any minutes of a program to count."""

    consent_required: bool = True
    min_conditions: int = Field(default=0, ge=0)
    # Prerequisites the engine cannot see (care plan, initiating visit...): the practice
    # attests to them; they are listed so the explanation can point at them.
    attest: tuple[str, ...] = ()


class AddOn(_Flagged):
    code: CodeString
    increment_minutes: int = Field(gt=0)
    max_units_per_month: int | None = Field(default=None, gt=0)


class TimedCode(_Flagged):
    kind: Literal["timed"]
    description: str
    programs: tuple[Program, ...] = Field(min_length=1)
    threshold_minutes: int = Field(gt=0)
    counts_time_of: tuple[StaffRole, ...] = Field(min_length=1)
    months: MonthPhase = MonthPhase.ANY
    interactive_contact_required: bool = False
    add_on: AddOn | None = None


class DeclaredCode(_Flagged):
    """A code the year knows (for exclusions and completeness) but the roll-up does not earn."""

    kind: Literal["declared"]
    description: str
    programs: tuple[Program, ...] = ()
    not_rolled_up_because: str


BillingCode = Annotated[TimedCode | DeclaredCode, Field(discriminator="kind")]


class ExclusionScope(StrEnum):
    PATIENT = "patient"  # never in the same month for the same patient
    SAME_PRACTITIONER = "same-practitioner"  # not in the same month by the same practitioner


class Exclusion(_Flagged):
    """Codes that cannot be billed in the same month.

    Without ``excludes``, at most one of ``codes`` is billed; with it, no code of ``codes`` is
    billed together with a code of ``excludes``.
    """

    codes: tuple[CodeString, ...] = Field(min_length=1)
    excludes: tuple[CodeString, ...] = ()
    scope: ExclusionScope

    @model_validator(mode="after")
    def _needs_two_codes(self) -> Exclusion:
        if not self.excludes and len(self.codes) < 2:
            raise ValueError("an exclusion needs two codes, or codes and excludes")
        return self

    def pairs(self) -> frozenset[frozenset[str]]:
        if self.excludes:
            return frozenset(frozenset({a, b}) for a in self.codes for b in self.excludes if a != b)
        return frozenset(
            frozenset({a, b}) for i, a in enumerate(self.codes) for b in self.codes[i + 1 :]
        )


class RuleYear(_Rule):
    """One calendar year of care-management billing rules.

    ``codes`` is ordered: when two earned codes exclude each other, the one listed first is
    kept. Put the code that describes more work (and pays more) first.
    """

    rule_year: int = Field(ge=2000, le=2100)
    title: str
    sources: dict[str, Source] = Field(min_length=1)
    programs: dict[Program, ProgramRule]
    codes: dict[CodeString, BillingCode] = Field(min_length=1)
    exclusions: dict[str, Exclusion] = {}

    def timed_codes(self) -> list[tuple[str, TimedCode]]:
        return [(code, rule) for code, rule in self.codes.items() if isinstance(rule, TimedCode)]

    def add_on_codes(self) -> dict[str, str]:
        """Each add-on code and the first base code it follows."""
        found: dict[str, str] = {}
        for code, rule in self.timed_codes():
            if rule.add_on is not None:
                found.setdefault(rule.add_on.code, code)
        return found

    def conflicts(self, code: str, other: str) -> ExclusionScope | None:
        """The widest scope in which ``code`` and ``other`` exclude each other, if any."""
        pair = frozenset({code, other})
        scopes = {ex.scope for ex in self.exclusions.values() if pair in ex.pairs()}
        if ExclusionScope.PATIENT in scopes:
            return ExclusionScope.PATIENT
        return next(iter(scopes), None)
