"""Program enrollment (CCM, PCM, BHI...) and the patient's consent to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from fhirbridge.domain.codes import Code


class Program(StrEnum):
    CCM = "CCM"
    COMPLEX_CCM = "complex-CCM"
    PCM = "PCM"
    RPM = "RPM"
    BHI = "BHI"
    COCM = "CoCM"
    TCM = "TCM"
    APCM = "APCM"
    CHI = "CHI"
    PIN = "PIN"


class EnrollmentStatus(StrEnum):
    PLANNED = "planned"
    WAITLIST = "waitlist"
    ACTIVE = "active"
    ON_HOLD = "onhold"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    ENTERED_IN_ERROR = "entered-in-error"


class RiskLevel(StrEnum):
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


class ConsentMethod(StrEnum):
    VERBAL = "verbal"
    WRITTEN = "written"


class ConsentStatus(StrEnum):
    DRAFT = "draft"
    PROPOSED = "proposed"
    ACTIVE = "active"
    REJECTED = "rejected"
    INACTIVE = "inactive"
    ENTERED_IN_ERROR = "entered-in-error"


@dataclass(slots=True)
class Enrollment:
    """A patient's enrollment in one care-management program."""

    id: str
    patient_id: str
    program: Program
    status: EnrollmentStatus
    start: date
    end: date | None = None
    conditions: list[str] = field(default_factory=list)  # "Condition/..." references on the EHR
    risk_level: RiskLevel | None = None
    care_manager_id: str | None = None
    billing_practitioner_id: str | None = None


@dataclass(slots=True)
class ProgramConsent:
    """The documented consent CMS requires before care-management time can be billed."""

    id: str
    patient_id: str
    enrollment_id: str
    program: Program
    status: ConsentStatus
    given_on: date
    method: ConsentMethod
    recorded_by_id: str
    scope: Code | None = None


# Enrollment fields a program may require to be filled in (mappings/programs.yaml).
REQUIRABLE_FIELDS = ("billing_practitioner_id", "care_manager_id", "risk_level")


@dataclass(frozen=True, slots=True)
class ProgramPrerequisites:
    """What an enrollment in ``program`` must name before its time can be billed: at least
    ``min_conditions`` conditions (``conditions_named`` says what kind, as the rule words it)
    and every field of ``required`` (from ``REQUIRABLE_FIELDS``)."""

    program: Program
    min_conditions: int = 0
    conditions_named: str = "conditions"
    required: tuple[str, ...] = ()

    def shortfalls(self, enrollment: Enrollment) -> list[tuple[str, str]]:
        """(field, reason) for each prerequisite ``enrollment`` lacks."""
        found = []
        count = len(enrollment.conditions)
        if count < self.min_conditions:
            wanted = f"at least {self.min_conditions} {self.conditions_named}"
            found.append(("conditions", f"{self.program.value} needs {wanted}, got {count}"))
        for name in self.required:
            if getattr(enrollment, name) is None:
                found.append((name, f"required for {self.program.value}"))
        return found


@dataclass(frozen=True, slots=True)
class EnrollmentPrerequisites:
    """The prerequisites of every program, which hold for enrollments in ``checked_statuses``
    (an enrollment still planned or waitlisted may lack them)."""

    checked_statuses: frozenset[EnrollmentStatus]
    programs: Mapping[Program, ProgramPrerequisites]

    def shortfalls(self, enrollment: Enrollment) -> list[tuple[str, str]]:
        if enrollment.status not in self.checked_statuses:
            return []
        rule = self.programs.get(enrollment.program)
        return [] if rule is None else rule.shortfalls(enrollment)
