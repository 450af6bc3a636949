"""Patients' care teams, their participants kept in order in a link table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from fhirbridge.domain.careteam import (
    CareTeamParticipant,
    CareTeamRole,
    CareTeamStatus,
    PatientCareTeam,
)
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.tables import PatientCareTeamParticipantRow, PatientCareTeamRow

__all__ = ["PatientCareTeams"]

_PARTICIPANT = PatientCareTeamParticipantRow


class PatientCareTeams(Repository[PatientCareTeam, PatientCareTeamRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.PATIENT_CARE_TEAM, row_type=PatientCareTeamRow)

    def _to_columns(self, entity: PatientCareTeam) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "status": entity.status.value,
            "name": entity.name,
        }

    def _to_entity(self, row: PatientCareTeamRow) -> PatientCareTeam:
        participants = [
            _participant(p)
            for p in self._session.scalars(
                select(_PARTICIPANT)
                .where(_PARTICIPANT.care_team_id == row.id)
                .order_by(_PARTICIPANT.position)
            )
        ]
        return PatientCareTeam(
            id=row.id,
            patient_id=row.patient_id,
            status=CareTeamStatus(row.status),
            name=row.name,
            participants=participants,
        )

    def _after_write(self, entity: PatientCareTeam) -> None:
        # A team is a handful of people: rewriting the list whole keeps positions dense.
        self._session.execute(delete(_PARTICIPANT).where(_PARTICIPANT.care_team_id == entity.id))
        if entity.participants:
            self._session.execute(
                insert(_PARTICIPANT),
                [
                    {
                        "care_team_id": entity.id,
                        "position": position,
                        "role": p.role.value,
                        "member_id": p.member_id,
                        "external_reference": p.external,
                        "start_on": p.start,
                        "end_on": p.end,
                    }
                    for position, p in enumerate(entity.participants)
                ],
            )

    def for_patient(self, patient_id: str) -> PatientCareTeam | None:
        found = self._list(
            select(PatientCareTeamRow).where(PatientCareTeamRow.patient_id == patient_id)
        )
        return found[0] if found else None


def _participant(row: PatientCareTeamParticipantRow) -> CareTeamParticipant:
    role = CareTeamRole(row.role)
    if row.external_reference is not None:
        return CareTeamParticipant.of_external(
            role, row.external_reference, start=row.start_on, end=row.end_on
        )
    return CareTeamParticipant(role, member_id=row.member_id, start=row.start_on, end=row.end_on)
