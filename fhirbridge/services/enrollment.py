"""Enrolling a patient in a care-management program, with the consent that makes it billable.

The enrollment and its consent are saved, and queued for the FHIR server (EpisodeOfCare and
Consent), in the caller's unit of work.

Rules checked on enrolling and on every change (all broken ones in one ``Rejected``):

- every care team member named (care manager, billing practitioner, who recorded the consent)
  exists and belongs to the patient's team: "no such care team member" either way, so the answer
  does not tell whether another team has that member;
- an enrollment in a checked status (active) has what its program requires
  (``EnrollmentPrerequisites``, from ``mappings/programs.yaml``): "CCM needs at least 2 chronic
  conditions, got 1" on ``conditions``, "required for CCM" on ``billing_practitioner_id``.
"""

from __future__ import annotations

import dataclasses
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
from fhirbridge.domain.enrollment import EnrollmentPrerequisites
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
    billing_practitioner_id: str | None = None
    conditions: list[str] | None = None


@dataclass(frozen=True, slots=True)
class ConsentChanges:
    status: ConsentStatus


def enroll(
    *,
    store: Store,
    new: NewEnrollment,
    today: date,
    prerequisites: EnrollmentPrerequisites,
) -> tuple[Enrollment, ProgramConsent]:
    patient = store.patients.get(new.patient_id)
    if patient is None:
        raise NotFound("patient", new.patient_id)
    errors = _period_errors(new.start, new.end)
    if new.consent.given_on > today:
        errors.append(FieldError("consent.given_on", "in the future"))
    errors.extend(
        _member_errors(
            store,
            patient.team,
            {
                "care_manager_id": new.care_manager_id,
                "billing_practitioner_id": new.billing_practitioner_id,
                "consent.recorded_by_id": new.consent.recorded_by_id,
            },
        )
    )
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
    errors.extend(_prerequisite_errors(prerequisites, enrollment))
    if errors:
        raise Rejected("enrollment", errors)
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
    *,
    store: Store,
    enrollment_id: str,
    changes: EnrollmentChanges,
    prerequisites: EnrollmentPrerequisites,
) -> Enrollment:
    """Change an enrollment; one that is (or becomes) active must then meet its program's
    prerequisites, so finishing or cancelling one is never refused for lacking them."""
    enrollment = get_enrollment(store=store, enrollment_id=enrollment_id)
    if enrollment.status is EnrollmentStatus.ENTERED_IN_ERROR:
        raise RecordLocked("enrollment", enrollment_id, "it is entered-in-error")
    errors = _period_errors(enrollment.start, changes.end)
    team = store.patients.require(enrollment.patient_id).team
    members = {
        "care_manager_id": changes.care_manager_id,
        "billing_practitioner_id": changes.billing_practitioner_id,
    }
    errors.extend(_member_errors(store, team, members))
    changed = dataclasses.replace(enrollment, conditions=list(enrollment.conditions))
    apply_changes(changed, changes)
    errors.extend(_prerequisite_errors(prerequisites, changed))
    if errors:
        raise Rejected("enrollment", errors)
    store.save(changed)
    return changed


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


def _member_errors(store: Store, team: str, members: dict[str, str | None]) -> list[FieldError]:
    errors = []
    for name, member_id in members.items():
        member = None if member_id is None else store.care_team.get(member_id)
        if member_id is not None and (member is None or member.team != team):
            errors.append(FieldError(name, "no such care team member"))
    return errors


def _prerequisite_errors(
    prerequisites: EnrollmentPrerequisites, enrollment: Enrollment
) -> list[FieldError]:
    return [FieldError(name, reason) for name, reason in prerequisites.shortfalls(enrollment)]
