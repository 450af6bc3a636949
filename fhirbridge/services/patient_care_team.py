"""A patient's care team, as the API edits it (``GET/PUT /patients/{id}/care-team``).

    view = care_team_of(store, patient=patient)     # stored, or proposed from enrollments
    view = put_care_team(store, patient=patient, change=TeamChange(...))

How it relates to the enrollments' ``care_manager_id`` and ``billing_practitioner_id``: the
enrollment stays the source of who bills and who manages a program (billing reads only the
enrollment, and changing a team never changes an enrollment). The care team is the patient's
list of everyone on their care, sent to the EHR as a US Core CareTeam. A patient without a
stored team is offered one proposed from the enrollments (``seeded``); a stored team lists the
enrollments' people it lacks (``missing``), so a person can add them.

A participant is one of our staff (``member_id``, of the patient's team: another team's member
is refused like a missing one) or one external reference (``Practitioner/``,
``Organization/`` or ``RelatedPerson/``). Refusals name the field: ``participants[2].member_id``.
Saving queues the team for pushing as CareTeam (``Store.save``). Services flush, never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from fhirbridge.domain import PatientLink
from fhirbridge.domain.careteam import (
    CareTeamParticipant,
    CareTeamRole,
    CareTeamStatus,
    PatientCareTeam,
)
from fhirbridge.domain.enrollment import EnrollmentStatus
from fhirbridge.persistence import Store
from fhirbridge.services.errors import FieldError, Rejected

__all__ = ["ParticipantChange", "TeamChange", "TeamView", "care_team_of", "put_care_team"]

# Enrollments whose people a team is offered: those still running or about to.
_OFFERED_FROM = frozenset(
    {EnrollmentStatus.PLANNED, EnrollmentStatus.ACTIVE, EnrollmentStatus.ON_HOLD}
)


@dataclass(frozen=True, slots=True)
class ParticipantChange:
    role: CareTeamRole
    member_id: str | None = None
    external: str | None = None
    start: date | None = None
    end: date | None = None


@dataclass(frozen=True, slots=True)
class TeamChange:
    status: CareTeamStatus = CareTeamStatus.ACTIVE
    name: str | None = None
    participants: Sequence[ParticipantChange] = ()


@dataclass(frozen=True, slots=True)
class TeamView:
    team: PatientCareTeam
    stored: bool  # False: proposed from the enrollments, not saved
    missing: list[CareTeamParticipant] = field(default_factory=list)


def care_team_of(store: Store, *, patient: PatientLink) -> TeamView:
    enrollments = [
        e for e in store.enrollments.list_for_patient(patient.id) if e.status in _OFFERED_FROM
    ]
    stored = store.patient_care_teams.for_patient(patient.id)
    if stored is not None:
        return TeamView(stored, True, stored.missing_from(enrollments))
    proposed = PatientCareTeam(id="", patient_id=patient.id, status=CareTeamStatus.PROPOSED)
    proposed.participants = proposed.missing_from(enrollments)
    return TeamView(proposed, False)


def put_care_team(store: Store, *, patient: PatientLink, change: TeamChange) -> TeamView:
    """The patient's team becomes ``change``; queued for pushing as CareTeam."""
    participants = _participants(store, patient, change.participants)
    before = store.patient_care_teams.for_patient(patient.id)
    team = PatientCareTeam(
        id=before.id if before is not None else uuid.uuid4().hex,
        patient_id=patient.id,
        status=change.status,
        name=change.name,
        participants=participants,
    )
    if before != team:
        store.save(team, new=before is None)
    return care_team_of(store, patient=patient)


def _participants(
    store: Store, patient: PatientLink, changes: Sequence[ParticipantChange]
) -> list[CareTeamParticipant]:
    errors: list[FieldError] = []
    found: list[CareTeamParticipant] = []
    for index, change in enumerate(changes):
        where = f"participants[{index}]"
        if (change.member_id is None) == (change.external is None):
            errors.append(FieldError(where, "give member_id (our staff) or external, not both"))
            continue
        if change.start is not None and change.end is not None and change.end < change.start:
            errors.append(FieldError(f"{where}.end", "before the participant's start"))
            continue
        if change.member_id is not None:
            member = store.care_team.get(change.member_id)
            if member is None or member.team != patient.team:
                errors.append(FieldError(f"{where}.member_id", "no such care team member"))
                continue
            found.append(
                CareTeamParticipant(
                    change.role, member_id=change.member_id, start=change.start, end=change.end
                )
            )
            continue
        try:
            found.append(
                CareTeamParticipant.of_external(
                    change.role, change.external or "", start=change.start, end=change.end
                )
            )
        except ValueError as error:
            errors.append(FieldError(f"{where}.external", str(error)))
    if errors:
        raise Rejected("care team", errors)
    return found
