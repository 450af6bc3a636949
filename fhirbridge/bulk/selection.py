"""Which patients and records an export covers, read in pages.

These are read-only statements over the tables, kept beside the exporter that pages through
them: the repositories load whole records, and an export needs ids first (a page of patients,
then their records' ids, then the records by id), so memory stays one page deep.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fhirbridge.domain import Program
from fhirbridge.persistence import EntityKind
from fhirbridge.persistence.tables import (
    CarePlanRow,
    CareTaskRow,
    ChargeRow,
    EnrollmentRow,
    FhirLinkRow,
    GoalRow,
    OutboxRow,
    PatientLinkRow,
    ProgramConsentRow,
    ReferralRow,
    TimeEntryRow,
)

__all__ = ["changed_since", "patient_page", "patients_matching", "record_ids"]

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
}


def _enrolled(program: Program) -> object:
    return PatientLinkRow.id.in_(
        select(EnrollmentRow.patient_id).where(EnrollmentRow.program == program.value)
    )


def patient_page(
    session: Session,
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
    if program is not None:
        statement = statement.where(_enrolled(program))  # type: ignore[arg-type]
    if team is not None:
        statement = statement.where(PatientLinkRow.team == team)
    return list(session.scalars(statement))


def patients_matching(
    session: Session,
    *,
    ids: Collection[str] = (),
    references: Collection[str] = (),
    identifiers: Collection[tuple[str | None, str]] = (),
    program: Program | None = None,
    team: str | None = None,
) -> set[str]:
    """Patient ids among those named by local id, EHR reference or identifier (the MRN)."""
    conditions = []
    if ids:
        conditions.append(PatientLinkRow.id.in_(ids))
    if references:
        conditions.append(PatientLinkRow.ehr_reference.in_(references))
    if identifiers:
        values = {value for _, value in identifiers}
        conditions.append(PatientLinkRow.mrn_value.in_(values))
    if not conditions:
        return set()
    statement = select(
        PatientLinkRow.id,
        PatientLinkRow.ehr_reference,
        PatientLinkRow.mrn_system,
        PatientLinkRow.mrn_value,
    ).where(or_(*conditions))
    if program is not None:
        statement = statement.where(_enrolled(program))  # type: ignore[arg-type]
    if team is not None:
        statement = statement.where(PatientLinkRow.team == team)
    wanted_ids, wanted_refs = set(ids), set(references)
    found: set[str] = set()
    for patient_id, reference, system, value in session.execute(statement):
        by_identifier = any(v == value and s in (None, system) for s, v in identifiers)
        if patient_id in wanted_ids or reference in wanted_refs or by_identifier:
            found.add(patient_id)
    return found


def record_ids(session: Session, kind: EntityKind, patient_ids: Sequence[str]) -> list[str]:
    """Ids of ``kind`` records about the given patients, sorted."""
    row = _ROWS[kind]
    statement = select(row.id).where(row.patient_id.in_(patient_ids)).order_by(row.id)
    return list(session.scalars(statement))


def changed_since(
    session: Session, kind: EntityKind, local_ids: Sequence[str], since: datetime
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
    return set(session.scalars(queued)) | set(session.scalars(synced))
