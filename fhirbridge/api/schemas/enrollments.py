from __future__ import annotations

from datetime import date

from pydantic import Field

from fhirbridge.api.schemas._base import Day, Id, Incoming, Name, OptionalId, Outgoing
from fhirbridge.domain import (
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    RiskLevel,
)

MAX_CONDITIONS = 100  # far above any real problem list, far below a flood


class ConsentCreate(Incoming):
    given_on: Day
    method: ConsentMethod
    recorded_by_id: OptionalId = None  # default: the caller
    status: ConsentStatus = ConsentStatus.ACTIVE


class ConsentUpdate(Incoming):
    status: ConsentStatus


class ConsentRead(Outgoing):
    id: str
    enrollment_id: str
    program: Program
    status: ConsentStatus
    given_on: date
    method: ConsentMethod
    recorded_by_id: str


class EnrollmentCreate(Incoming):
    patient_id: Id
    program: Program
    start: Day
    consent: ConsentCreate
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE
    end: Day | None = None
    risk_level: RiskLevel | None = None
    care_manager_id: OptionalId = None
    billing_practitioner_id: OptionalId = None
    # EHR references such as "Condition/1"
    conditions: list[Name] = Field(default_factory=list, max_length=MAX_CONDITIONS)


class EnrollmentUpdate(Incoming):
    status: EnrollmentStatus | None = None
    end: Day | None = None
    risk_level: RiskLevel | None = None
    care_manager_id: OptionalId = None
    # What a planned enrollment may still lack, to be given before it becomes active.
    billing_practitioner_id: OptionalId = None
    conditions: list[Name] | None = Field(default=None, max_length=MAX_CONDITIONS)


class EnrollmentRead(Outgoing):
    id: str
    patient_id: str
    program: Program
    status: EnrollmentStatus
    start: date
    end: date | None
    risk_level: RiskLevel | None
    care_manager_id: str | None
    billing_practitioner_id: str | None
    conditions: list[str]
    consents: list[ConsentRead]

    @classmethod
    def of(cls, enrollment: Enrollment, consents: list[ProgramConsent]) -> EnrollmentRead:
        return cls(
            id=enrollment.id,
            patient_id=enrollment.patient_id,
            program=enrollment.program,
            status=enrollment.status,
            start=enrollment.start,
            end=enrollment.end,
            risk_level=enrollment.risk_level,
            care_manager_id=enrollment.care_manager_id,
            billing_practitioner_id=enrollment.billing_practitioner_id,
            conditions=list(enrollment.conditions),
            consents=[ConsentRead.model_validate(c) for c in consents],
        )
