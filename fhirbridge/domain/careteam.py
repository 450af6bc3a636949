"""A patient's care team: who manages the patient's care, in which role, and when.

One care team per patient. Each participant has a role (the four the care-management programs
name) and is either one of our staff (``member_id``, a ``CareTeamMember`` tied to the EHR's
Practitioner) or someone on the EHR we only point at (a ``Practitioner/``, ``Organization/``
or ``RelatedPerson/`` reference), never both.

How it relates to an enrollment's ``care_manager_id`` and ``billing_practitioner_id``: the
enrollment stays the source of who bills and who manages a program (billing reads it), and the
care team is where everyone on the patient's care is listed for the EHR. ``missing_from`` names
the enrollment's people the team lacks, so a caller can offer to add them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from fhirbridge.domain.enrollment import Enrollment

__all__ = [
    "EXTERNAL_MEMBER_TYPES",
    "CareTeamParticipant",
    "CareTeamRole",
    "CareTeamStatus",
    "PatientCareTeam",
]

# Resource types an external participant may be (US Core CareTeam.participant.member).
EXTERNAL_MEMBER_TYPES = ("Practitioner", "Organization", "RelatedPerson")


class CareTeamStatus(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    INACTIVE = "inactive"
    ENTERED_IN_ERROR = "entered-in-error"


class CareTeamRole(StrEnum):
    CARE_MANAGER = "care-manager"
    BILLING_PRACTITIONER = "billing-practitioner"
    BH_CARE_MANAGER = "bh-care-manager"
    PSYCHIATRIC_CONSULTANT = "psychiatric-consultant"


@dataclass(frozen=True, slots=True)
class CareTeamParticipant:
    """One participant: our staff member (``member_id``) or one external reference, kept by
    its type (``practitioner``, ``organization``, ``related_person``: "Organization/abc").

    Read back from a CareTeam, a reference to one of our staff is also a Practitioner
    reference; given both, the staff member is kept (``practitioner`` is cleared).
    """

    role: CareTeamRole
    member_id: str | None = None  # one of our CareTeamMembers
    practitioner: str | None = None  # "Practitioner/abc" on the EHR
    organization: str | None = None
    related_person: str | None = None
    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if self.member_id is not None and self.practitioner is not None:
            object.__setattr__(self, "practitioner", None)
        given = [
            value
            for value in (self.member_id, self.practitioner, self.organization, self.related_person)
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError("a participant is one of our staff or one external reference")
        for kind, value in _EXTERNAL_FIELDS.items():
            reference = getattr(self, value)
            if reference is not None and not _is_reference(reference, kind):
                raise ValueError(f"{value} must be a {kind}/<id> reference")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("a participant's period ends before it starts")

    @property
    def external(self) -> str | None:
        """The external reference, whatever its type (None for our staff)."""
        return self.practitioner or self.organization or self.related_person

    @classmethod
    def of_external(
        cls,
        role: CareTeamRole,
        reference: str,
        *,
        start: date | None = None,
        end: date | None = None,
    ) -> CareTeamParticipant:
        """A participant from an external reference of any allowed type; ValueError
        otherwise."""
        kind = reference.partition("/")[0]
        field_name = _EXTERNAL_FIELDS.get(kind)
        if field_name is None or not _is_reference(reference, kind):
            allowed = ", ".join(EXTERNAL_MEMBER_TYPES)
            raise ValueError(f"an external participant is a reference to {allowed}")
        return cls(role, start=start, end=end, **{field_name: reference})


# Resource type of an external participant -> the field holding it.
_EXTERNAL_FIELDS = {
    "Practitioner": "practitioner",
    "Organization": "organization",
    "RelatedPerson": "related_person",
}


def _is_reference(value: str, kind: str) -> bool:
    head, _, rest = value.partition("/")
    return head == kind and bool(rest) and "/" not in rest


@dataclass(slots=True)
class PatientCareTeam:
    id: str
    patient_id: str
    status: CareTeamStatus = CareTeamStatus.ACTIVE
    name: str | None = None
    participants: list[CareTeamParticipant] = field(default_factory=list)

    def member_ids(self) -> set[str]:
        return {p.member_id for p in self.participants if p.member_id is not None}

    def missing_from(self, enrollments: Iterable[Enrollment]) -> list[CareTeamParticipant]:
        """The enrollments' care managers and billing practitioners the team does not list
        in that role, as participants to add (in enrollment order, without repeats)."""
        listed = {(p.role, p.member_id) for p in self.participants}
        found: list[CareTeamParticipant] = []
        for enrollment in enrollments:
            for role, member in (
                (CareTeamRole.CARE_MANAGER, enrollment.care_manager_id),
                (CareTeamRole.BILLING_PRACTITIONER, enrollment.billing_practitioner_id),
            ):
                if member is None or (role, member) in listed:
                    continue
                listed.add((role, member))
                found.append(CareTeamParticipant(role, member_id=member))
        return found
