"""Program enrollment (CCM, PCM, BHI...) and the patient's consent to it."""

from __future__ import annotations

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
