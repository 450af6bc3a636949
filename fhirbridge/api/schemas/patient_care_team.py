"""Bodies of a patient's care team (``/patients/{id}/care-team``); not the staff roster
(``care_team.py``, ``/care-team-members``)."""

from __future__ import annotations

from pydantic import Field

from fhirbridge.api.schemas._base import Day, Id, Incoming, Name, Outgoing
from fhirbridge.domain.careteam import (
    CareTeamParticipant,
    CareTeamRole,
    CareTeamStatus,
    PatientCareTeam,
)

__all__ = ["CareTeamParticipantIn", "CareTeamRead", "CareTeamUpdate", "ParticipantRead"]

MAX_PARTICIPANTS = 50


class CareTeamParticipantIn(Incoming):
    """Our staff member (``member_id``) or an external reference (``external``:
    ``Practitioner/..``, ``Organization/..`` or ``RelatedPerson/..``), not both."""

    role: CareTeamRole
    member_id: Id | None = None
    external: Name | None = None
    start: Day | None = None
    end: Day | None = None


class CareTeamUpdate(Incoming):
    status: CareTeamStatus = CareTeamStatus.ACTIVE
    name: Name | None = None
    participants: list[CareTeamParticipantIn] = Field(max_length=MAX_PARTICIPANTS)


class ParticipantRead(Outgoing):
    role: CareTeamRole
    member_id: str | None
    external: str | None
    start: Day | None
    end: Day | None

    @classmethod
    def of(cls, participant: CareTeamParticipant) -> ParticipantRead:
        return cls(
            role=participant.role,
            member_id=participant.member_id,
            external=participant.external,
            start=participant.start,
            end=participant.end,
        )


class CareTeamRead(Outgoing):
    id: str | None  # None: proposed from the enrollments, not stored yet
    patient_id: str
    status: CareTeamStatus
    name: str | None
    participants: list[ParticipantRead]
    # The enrollments' care managers and billing practitioners the stored team lacks.
    missing_from_enrollments: list[ParticipantRead]

    @classmethod
    def of(
        cls, team: PatientCareTeam, *, stored: bool, missing: list[CareTeamParticipant]
    ) -> CareTeamRead:
        return cls(
            id=team.id if stored else None,
            patient_id=team.patient_id,
            status=team.status,
            name=team.name,
            participants=[ParticipantRead.of(p) for p in team.participants],
            missing_from_enrollments=[ParticipantRead.of(p) for p in missing],
        )
