"""Enrolling a patient in a care-management program, with the consent that makes it billable.

The enrollment and its consent are saved, and queued for the FHIR server (EpisodeOfCare and
Consent), in the caller's unit of work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

from fhirbridge.domain import (
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    RiskLevel,
)
from fhirbridge.persistence import Store
from fhirbridge.services.changes import apply_changes
from fhirbridge.services.errors import FieldError, NotFound, RecordLocked, Rejected

__all__ = [
    "ConsentChanges",
    "EnrollmentChanges",
    "NewConsent",
    "NewEnrollment",
    "consents_of",
    "enroll",
    "get_enrollment",
    "update_consent",
    "update_enrollment",
]


@dataclass(frozen=True, slots=True)
class NewConsent:
    given_on: date
    method: ConsentMethod
    recorded_by_id: str
    status: ConsentStatus = ConsentStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class NewEnrollment:
    patient_id: str
    program: Program
    start: date
    consent: NewConsent
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE
    end: date | None = None
    risk_level: RiskLevel | None = None
    care_manager_id: str | None = None
    billing_practitioner_id: str | None = None
    conditions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EnrollmentChanges:
    """Fields to change; None leaves a field as it is."""

    status: EnrollmentStatus | None = None
    end: date | None = None
    risk_level: RiskLevel | None = None
    care_manager_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentChanges:
    status: ConsentStatus


def enroll(*, store: Store, new: NewEnrollment, today: date) -> tuple[Enrollment, ProgramConsent]:
    if store.patients.get(new.patient_id) is None:
        raise NotFound("patient", new.patient_id)
    errors = _period_errors(new.start, new.end)
    if new.consent.given_on > today:
        errors.append(FieldError("consent.given_on", "in the future"))
    errors.extend(
        _member_errors(
            store,
            {
                "care_manager_id": new.care_manager_id,
                "billing_practitioner_id": new.billing_practitioner_id,
                "consent.recorded_by_id": new.consent.recorded_by_id,
            },
        )
    )
    if errors:
        raise Rejected("enrollment", errors)
    enrollment = Enrollment(
        id=uuid.uuid4().hex,
        patient_id=new.patient_id,
        program=new.program,
        status=new.status,
        start=new.start,
        end=new.end,
        conditions=list(new.conditions),
        risk_level=new.risk_level,
        care_manager_id=new.care_manager_id,
        billing_practitioner_id=new.billing_practitioner_id,
    )
    consent = ProgramConsent(
        id=uuid.uuid4().hex,
        patient_id=new.patient_id,
        enrollment_id=enrollment.id,
        program=new.program,
        status=new.consent.status,
        given_on=new.consent.given_on,
        method=new.consent.method,
        recorded_by_id=new.consent.recorded_by_id,
    )
    store.save(enrollment)
    store.save(consent)
    return enrollment, consent


def get_enrollment(*, store: Store, enrollment_id: str) -> Enrollment:
    enrollment = store.enrollments.get(enrollment_id)
    if enrollment is None:
        raise NotFound("enrollment", enrollment_id)
    return enrollment


def consents_of(*, store: Store, enrollment_id: str) -> list[ProgramConsent]:
    return store.consents.list_for_enrollment(enrollment_id)


def update_enrollment(
    *, store: Store, enrollment_id: str, changes: EnrollmentChanges
) -> Enrollment:
    enrollment = get_enrollment(store=store, enrollment_id=enrollment_id)
    if enrollment.status is EnrollmentStatus.ENTERED_IN_ERROR:
        raise RecordLocked("enrollment", enrollment_id, "it is entered-in-error")
    errors = _period_errors(enrollment.start, changes.end)
    errors.extend(_member_errors(store, {"care_manager_id": changes.care_manager_id}))
    if errors:
        raise Rejected("enrollment", errors)
    apply_changes(enrollment, changes)
    store.save(enrollment)
    return enrollment


def update_consent(
    *, store: Store, enrollment_id: str, consent_id: str, changes: ConsentChanges
) -> ProgramConsent:
    consent = store.consents.get(consent_id)
    if consent is None or consent.enrollment_id != enrollment_id:
        raise NotFound("consent", consent_id)
    consent.status = changes.status
    store.save(consent)
    return consent


def _period_errors(start: date, end: date | None) -> list[FieldError]:
    if end is not None and end < start:
        return [FieldError("end", "before start")]
    return []


def _member_errors(store: Store, members: dict[str, str | None]) -> list[FieldError]:
    return [
        FieldError(name, "no such care team member")
        for name, member_id in members.items()
        if member_id is not None and store.care_team.get(member_id) is None
    ]
