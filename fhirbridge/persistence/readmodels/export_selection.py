"""Which patients and records an export covers, read in pages (``store.export_selection``).

The repositories load whole records; an export needs ids first (a page of patients, then their
records' ids, then the records by id), so memory stays one page deep. Which patients a roster
names is decided in ``fhirbridge.bulk.selection``; this module only reads the candidates.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from fhirbridge.domain import Program
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.tables import (
    AssessmentRow,
    CarePlanRow,
    CareTaskRow,
    ChargeRow,
    EnrollmentRow,
    FhirLinkRow,
    GoalRow,
    HealthConcernRow,
    OutboxRow,
    PatientCareTeamRow,
    PatientLinkRow,
    ProgramConsentRow,
    ReferralRow,
    ScreeningObservationRow,
    TcmContactRow,
    TimeEntryRow,
)

__all__ = ["ExportSelectionRows", "PatientKeys"]

_S = TypeVar("_S", bound=Select[*tuple[Any, ...]])

# Every record table has ``id`` and ``patient_id``; typed loosely as the tables share no base.
_ROWS: dict[EntityKind, Any] = {
    EntityKind.ENROLLMENT: EnrollmentRow,
    EntityKind.PROGRAM_CONSENT: ProgramConsentRow,
    EntityKind.CARE_PLAN: CarePlanRow,
    EntityKind.GOAL: GoalRow,
    EntityKind.CARE_TASK: CareTaskRow,
    EntityKind.TIME_ENTRY: TimeEntryRow,
    EntityKind.REFERRAL: ReferralRow,
    EntityKind.CHARGE: ChargeRow,
    EntityKind.PATIENT_CARE_TEAM: PatientCareTeamRow,
    EntityKind.ASSESSMENT: AssessmentRow,
    EntityKind.SCREENING_OBSERVATION: ScreeningObservationRow,
    EntityKind.HEALTH_CONCERN: HealthConcernRow,
    EntityKind.TCM_CONTACT: TcmContactRow,
}


@dataclass(frozen=True, slots=True)
class PatientKeys:
    """The ways a roster may name a patient: local id, EHR reference, identifier (the MRN)."""

    id: str
    ehr_reference: str | None
    mrn_system: str | None
    mrn_value: str | None


class ExportSelectionRows:
    def __init__(self, session: Session) -> None:
        self._session = session

    def patient_page(
        self,
        *,
        after: str | None,
        limit: int,
        program: Program | None = None,
        team: str | None = None,
    ) -> list[str]:
        """The next ``limit`` patient ids after ``after`` (keyset pagination by id)."""
        statement = select(PatientLinkRow.id).order_by(PatientLinkRow.id).limit(limit)
        if after is not None:
            statement = statement.where(PatientLinkRow.id > after)
        return list(self._session.scalars(_narrowed(statement, program, team)))

    def patients_named(
        self,
        *,
        ids: Collection[str] = (),
        references: Collection[str] = (),
        mrn_values: Collection[str] = (),
        program: Program | None = None,
        team: str | None = None,
    ) -> list[PatientKeys]:
        """Patients whose id, EHR reference or MRN value is among those given (any system)."""
        conditions: list[ColumnElement[bool]] = []
        if ids:
            conditions.append(PatientLinkRow.id.in_(ids))
        if references:
            conditions.append(PatientLinkRow.ehr_reference.in_(references))
        if mrn_values:
            conditions.append(PatientLinkRow.mrn_value.in_(mrn_values))
        if not conditions:
            return []
        statement = select(
            PatientLinkRow.id,
            PatientLinkRow.ehr_reference,
            PatientLinkRow.mrn_system,
            PatientLinkRow.mrn_value,
        ).where(or_(*conditions))
        return [
            PatientKeys(id=patient_id, ehr_reference=reference, mrn_system=system, mrn_value=value)
            for patient_id, reference, system, value in self._session.execute(
                _narrowed(statement, program, team)
            )
        ]

    def record_ids(self, kind: EntityKind, patient_ids: Sequence[str]) -> list[str]:
        """Ids of ``kind`` records about the given patients, sorted."""
        row = _ROWS[kind]
        statement = select(row.id).where(row.patient_id.in_(patient_ids)).order_by(row.id)
        return list(self._session.scalars(statement))

    def changed_since(
        self, kind: EntityKind, local_ids: Sequence[str], since: datetime
    ) -> set[str]:
        """Which of ``local_ids`` changed at or after ``since``: a local change queued in the
        outbox then (every save through the Store queues one), or a server copy synced then."""
        if not local_ids:
            return set()
        queued = select(OutboxRow.local_id).where(
            OutboxRow.entity_kind == kind.value,
            OutboxRow.local_id.in_(local_ids),
            OutboxRow.created_at >= since,
        )
        synced = select(FhirLinkRow.local_id).where(
            FhirLinkRow.entity_kind == kind.value,
            FhirLinkRow.local_id.in_(local_ids),
            FhirLinkRow.synced_at >= since,
        )
        return set(self._session.scalars(queued)) | set(self._session.scalars(synced))


def _narrowed(statement: _S, program: Program | None, team: str | None) -> _S:
    if program is not None:
        enrolled = select(EnrollmentRow.patient_id).where(EnrollmentRow.program == program.value)
        statement = statement.where(PatientLinkRow.id.in_(enrolled))
    if team is not None:
        statement = statement.where(PatientLinkRow.team == team)
    return statement
