"""Patients (links to the EHR's Patient) and care team members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhirbridge.domain import CareTeamMember, PatientLink, StaffRole
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.tables import CareTeamMemberRow, PatientLinkRow


class PatientLinks(Repository[PatientLink, PatientLinkRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.PATIENT_LINK, row_type=PatientLinkRow)

    def _to_columns(self, entity: PatientLink) -> dict[str, Any]:
        return {
            "id": entity.id,
            "ehr_reference": entity.ehr_reference,
            "mrn_system": entity.mrn_system,
            "mrn_value": entity.mrn_value,
            "team": entity.team,
        }

    def _to_entity(self, row: PatientLinkRow) -> PatientLink:
        return PatientLink(
            id=row.id,
            ehr_reference=row.ehr_reference,
            mrn_system=row.mrn_system,
            mrn_value=row.mrn_value,
            team=row.team,
        )

    def find_by_ehr_reference(self, ehr_reference: str) -> PatientLink | None:
        found = self._list(
            select(PatientLinkRow).where(PatientLinkRow.ehr_reference == ehr_reference)
        )
        return found[0] if found else None

    def list_for_team(self, team: str) -> list[PatientLink]:
        return self._list(
            select(PatientLinkRow).where(PatientLinkRow.team == team).order_by(PatientLinkRow.id)
        )

    def list_all(self) -> list[PatientLink]:
        """Every team's patients, by team then id."""
        return self._list(select(PatientLinkRow).order_by(PatientLinkRow.team, PatientLinkRow.id))


class CareTeam(Repository[CareTeamMember, CareTeamMemberRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.CARE_TEAM_MEMBER, row_type=CareTeamMemberRow)

    def _to_columns(self, entity: CareTeamMember) -> dict[str, Any]:
        return {
            "id": entity.id,
            "name": entity.name,
            "role": entity.role.value,
            "practitioner_reference": entity.practitioner_reference,
            "npi": entity.npi,
            "team": entity.team,
        }

    def _to_entity(self, row: CareTeamMemberRow) -> CareTeamMember:
        return CareTeamMember(
            id=row.id,
            name=row.name,
            role=StaffRole(row.role),
            practitioner_reference=row.practitioner_reference,
            npi=row.npi,
            team=row.team,
        )

    def find_by_practitioner_reference(self, reference: str) -> CareTeamMember | None:
        rows = self._session.scalars(
            select(CareTeamMemberRow).where(CareTeamMemberRow.practitioner_reference == reference)
        ).all()
        return self._to_entity(rows[0]) if rows else None

    def list_for_team(self, team: str) -> list[CareTeamMember]:
        return self._list(
            select(CareTeamMemberRow)
            .where(CareTeamMemberRow.team == team)
            .order_by(CareTeamMemberRow.name, CareTeamMemberRow.id)
        )

    def list_all(self) -> list[CareTeamMember]:
        """Every team's members, by team then name."""
        return self._list(
            select(CareTeamMemberRow).order_by(
                CareTeamMemberRow.team, CareTeamMemberRow.name, CareTeamMemberRow.id
            )
        )
