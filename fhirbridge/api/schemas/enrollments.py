from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from fhirbridge.api.schemas._base import Id, Incoming, Outgoing
from fhirbridge.domain import (
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    RiskLevel,
)


class ConsentCreate(Incoming):
    given_on: date
    method: ConsentMethod
    recorded_by_id: Annotated[str | None, Field(max_length=64)] = None  # default: the caller
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
    patient_id: Annotated[str, Id]
    program: Program
    start: date
    consent: ConsentCreate
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE
    end: date | None = None
    risk_level: RiskLevel | None = None
    care_manager_id: Annotated[str | None, Field(max_length=64)] = None
    billing_practitioner_id: Annotated[str | None, Field(max_length=64)] = None
    conditions: list[Annotated[str, Field(max_length=255)]] = Field(default_factory=list)


class EnrollmentUpdate(Incoming):
    status: EnrollmentStatus | None = None
    end: date | None = None
    risk_level: RiskLevel | None = None
    care_manager_id: Annotated[str | None, Field(max_length=64)] = None


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
