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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fhirbridge.domain.enrollment import Program
from fhirbridge.domain.people import StaffRole

__all__ = [
    "AddOn",
    "ApcmAddOn",
    "ApcmTier",
    "BillingCode",
    "CodeString",
    "DeclaredCode",
    "DeviceDays",
    "DeviceDaysPer",
    "Exclusion",
    "ExclusionScope",
    "MonthPhase",
    "ProgramRule",
    "RuleYear",
    "Source",
    "TimedCode",
    "TransitionalCare",
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


class ApcmTier(_Rule):
    """Which APCM patients a tier code is for: a count of chronic conditions (``max_conditions``
    None: no upper bound) and the Qualified Medicare Beneficiary status (``qmb`` None: either)."""

    min_conditions: int = Field(default=0, ge=0)
    max_conditions: int | None = Field(default=None, ge=0)
    qmb: bool | None = None

    @model_validator(mode="after")
    def _bounds_in_order(self) -> ApcmTier:
        if self.max_conditions is not None and self.max_conditions < self.min_conditions:
            raise ValueError("max_conditions is below min_conditions")
        return self

    def fits(self, conditions: int, qmb: bool) -> bool:
        if conditions < self.min_conditions:
            return False
        if self.max_conditions is not None and conditions > self.max_conditions:
            return False
        return self.qmb is None or self.qmb == qmb


class ApcmAddOn(_Flagged):
    """An APCM add-on (CY2026 G0568-G0570): earned with an APCM tier code of ``with_codes``
    billed by the same practitioner, in a month with service of ``service_programs`` (an
    enrollment of that practitioner with at least ``service_minutes`` countable minutes).
    ``months`` is the phase of that program's enrollment (CoCM bills its first month apart)."""

    with_codes: tuple[CodeString, ...] = Field(min_length=1)
    service_programs: tuple[Program, ...] = Field(min_length=1)
    service_minutes: int = Field(default=1, gt=0)
    months: MonthPhase = MonthPhase.ANY


class DeviceDaysPer(StrEnum):
    """How often a device-days code (RPM) can be earned."""

    PERIOD = "period"  # once per period of ``period_days`` (99454, 99445)
    EPISODE = "episode"  # once per episode of monitoring (99453)


class DeviceDays(_Flagged):
    """A code earned from the number of days with device readings (RPM), not from minutes:
    ``min_days`` to ``max_days`` (None: up to the period's length) days with readings in one
    period of ``period_days`` days. An episode code is earned with the first period of the
    episode that reaches its ``min_days``. See ``fhirbridge.billing.device_days``."""

    per: DeviceDaysPer
    min_days: int = Field(ge=1)
    max_days: int | None = Field(default=None, ge=1)
    period_days: int = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _range(self) -> DeviceDays:
        if self.max_days is not None and self.max_days < self.min_days:
            raise ValueError(f"max_days {self.max_days} is below min_days {self.min_days}")
        if max(self.min_days, self.max_days or 0) > self.period_days:
            raise ValueError(f"a period has only {self.period_days} days")
        return self

    def fits(self, days: int) -> bool:
        return days >= self.min_days and (self.max_days is None or days <= self.max_days)

    def wants(self) -> str:
        """The days it needs, in words: "16", "2-15"."""
        if self.max_days is None or self.max_days == self.period_days:
            return str(self.min_days)
        return f"{self.min_days}-{self.max_days}"


class TransitionalCare(_Flagged):
    """A TCM code (99495, 99496): judged per discharge by ``fhirbridge.billing.transitional_care``.

    Earned when the period's recorded complexity is one of ``complexities``, an interactive
    contact came within ``contact_within_business_days`` business days after the discharge day
    (or ``attempts_for_contact`` documented timely unsuccessful attempts, None: attempts never
    stand in), and the face-to-face visit within ``visit_within_days`` calendar days, counted
    from the day after discharge. ``period_days``: the period, and the once-per-patient window.
    """

    complexities: tuple[Literal["moderate", "high"], ...] = Field(min_length=1)
    contact_within_business_days: int = Field(gt=0)
    visit_within_days: int = Field(gt=0)
    attempts_for_contact: int | None = Field(default=None, ge=1)
    period_days: int = Field(default=30, gt=0)
    holiday_calendar: str = "us-federal-holidays"


class DeclaredCode(_Flagged):
    """A code the year knows (for exclusions and completeness) but the roll-up does not earn.

    Codes judged by a program of their own carry that program's data instead of a reason
    (``apcm_tier``, ``apcm_add_on``); the others say why they are not rolled up.
    """

    kind: Literal["declared"]
    description: str
    programs: tuple[Program, ...] = ()
    not_rolled_up_because: str | None = None
    apcm_tier: ApcmTier | None = None
    apcm_add_on: ApcmAddOn | None = None
    device_days: DeviceDays | None = None  # RPM device codes (99453, 99454, 99445)

    @model_validator(mode="before")
    @classmethod
    def _device_days_say_why(cls, data: Any) -> Any:
        # A device-days code is judged from days of readings; say so where a reason is read.
        if (
            isinstance(data, dict)
            and data.get("device_days")
            and not data.get("not_rolled_up_because")
        ):
            return {**data, "not_rolled_up_because": "judged from days of device readings"}
        return data

    transitional_care: TransitionalCare | None = None  # TCM (99495, 99496)

    @model_validator(mode="after")
    def _apcm_data_or_reason(self) -> DeclaredCode:
        apcm = (self.apcm_tier is not None) + (self.apcm_add_on is not None)
        if apcm > 1:
            raise ValueError("a code is an APCM tier or an APCM add-on, not both")
        if apcm and self.not_rolled_up_because is not None:
            raise ValueError("an APCM code is judged by APCM: drop not_rolled_up_because")
        if not apcm and self.not_rolled_up_because is None and not self._judged_elsewhere():
            raise ValueError("say why the code is not rolled up (not_rolled_up_because)")
        return self

    def _judged_elsewhere(self) -> bool:
        """Whether another program's data (besides APCM's) judges this code."""
        return any(
            getattr(self, name, None) is not None
            for name in type(self).model_fields
            if name not in _DECLARED_PLAIN
        )


# DeclaredCode fields that are not some program's judging data.
_DECLARED_PLAIN = frozenset(
    {"kind", "description", "programs", "not_rolled_up_because", "verify", "note", "sources"}
)


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

    def device_day_codes(self) -> list[tuple[str, DeviceDays]]:
        """The codes earned from days of device readings (RPM), in the rule file's order."""
        return [
            (code, rule.device_days)
            for code, rule in self.codes.items()
            if isinstance(rule, DeclaredCode) and rule.device_days is not None
        ]

    def transitional_care_codes(self) -> list[tuple[str, TransitionalCare]]:
        """The TCM codes, in the rule file's order."""
        return [
            (code, rule.transitional_care)
            for code, rule in self.codes.items()
            if isinstance(rule, DeclaredCode) and rule.transitional_care is not None
        ]

    def apcm_tiers(self) -> list[tuple[str, ApcmTier]]:
        """The APCM tier codes, in the rule file's order."""
        return [
            (code, rule.apcm_tier)
            for code, rule in self.codes.items()
            if isinstance(rule, DeclaredCode) and rule.apcm_tier is not None
        ]

    def apcm_add_ons(self) -> list[tuple[str, ApcmAddOn]]:
        """The APCM add-on codes (none before CY2026), in the rule file's order."""
        return [
            (code, rule.apcm_add_on)
            for code, rule in self.codes.items()
            if isinstance(rule, DeclaredCode) and rule.apcm_add_on is not None
        ]

    def conflicts(self, code: str, other: str) -> ExclusionScope | None:
        """The widest scope in which ``code`` and ``other`` exclude each other, if any."""
        pair = frozenset({code, other})
        scopes = {ex.scope for ex in self.exclusions.values() if pair in ex.pairs()}
        if ExclusionScope.PATIENT in scopes:
            return ExclusionScope.PATIENT
        return next(iter(scopes), None)
