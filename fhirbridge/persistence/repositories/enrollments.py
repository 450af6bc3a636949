"""Program enrollments and the consents that make their time billable."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhirbridge.domain import (
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    RiskLevel,
)
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.repositories._values import (
    enum_member,
    enum_value,
    optional_code_from_json,
    optional_code_to_json,
)
from fhirbridge.persistence.tables import EnrollmentRow, ProgramConsentRow


class Enrollments(Repository[Enrollment, EnrollmentRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.ENROLLMENT, row_type=EnrollmentRow)

    def _to_columns(self, entity: Enrollment) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "program": entity.program.value,
            "status": entity.status.value,
            "start_on": entity.start,
            "end_on": entity.end,
            "conditions": list(entity.conditions),
            "risk_level": enum_value(entity.risk_level),
            "care_manager_id": entity.care_manager_id,
            "billing_practitioner_id": entity.billing_practitioner_id,
        }

    def _to_entity(self, row: EnrollmentRow) -> Enrollment:
        return Enrollment(
            id=row.id,
            patient_id=row.patient_id,
            program=Program(row.program),
            status=EnrollmentStatus(row.status),
            start=row.start_on,
            end=row.end_on,
            conditions=list(row.conditions),
            risk_level=enum_member(RiskLevel, row.risk_level),
            care_manager_id=row.care_manager_id,
            billing_practitioner_id=row.billing_practitioner_id,
        )

    def list_for_patient(self, patient_id: str) -> list[Enrollment]:
        return self._list(
            select(EnrollmentRow)
            .where(EnrollmentRow.patient_id == patient_id)
            .order_by(EnrollmentRow.start_on, EnrollmentRow.id)
        )


class ProgramConsents(Repository[ProgramConsent, ProgramConsentRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.PROGRAM_CONSENT, row_type=ProgramConsentRow)

    def _to_columns(self, entity: ProgramConsent) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "enrollment_id": entity.enrollment_id,
            "program": entity.program.value,
            "status": entity.status.value,
            "given_on": entity.given_on,
            "method": entity.method.value,
            "recorded_by_id": entity.recorded_by_id,
            "scope": optional_code_to_json(entity.scope),
        }

    def _to_entity(self, row: ProgramConsentRow) -> ProgramConsent:
        return ProgramConsent(
            id=row.id,
            patient_id=row.patient_id,
            enrollment_id=row.enrollment_id,
            program=Program(row.program),
            status=ConsentStatus(row.status),
            given_on=row.given_on,
            method=ConsentMethod(row.method),
            recorded_by_id=row.recorded_by_id,
            scope=optional_code_from_json(row.scope),
        )

    def list_for_patient(self, patient_id: str) -> list[ProgramConsent]:
        return self._list(
            select(ProgramConsentRow)
            .where(ProgramConsentRow.patient_id == patient_id)
            .order_by(ProgramConsentRow.given_on, ProgramConsentRow.id)
        )

    def list_for_enrollment(self, enrollment_id: str) -> list[ProgramConsent]:
        return self._list(
            select(ProgramConsentRow)
            .where(ProgramConsentRow.enrollment_id == enrollment_id)
            .order_by(ProgramConsentRow.given_on, ProgramConsentRow.id)
        )
