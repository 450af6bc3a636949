from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from fhirbridge.api.schemas._base import Id, Incoming, Name, Outgoing, checked_line
from fhirbridge.api.schemas.patients import Team
from fhirbridge.domain import StaffRole

# A member's name column holds 200 characters.
MemberName = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(checked_line)
]
Npi = Annotated[str, StringConstraints(pattern=r"^\d{10}$")]


class MemberCreate(Incoming):
    """A care-team member (``practitioner_reference``, e.g. ``Practitioner/abc``, is what FHIR
    resources name them by); ``team`` defaults to the caller's."""

    id: Id
    name: MemberName
    role: StaffRole
    practitioner_reference: Name | None = None
    npi: Npi | None = None
    team: Team | None = None


class MemberUpdate(Incoming):
    """Fields to change; an optional field sent as null is emptied."""

    name: MemberName | None = None
    role: StaffRole | None = None
    practitioner_reference: Name | None = None
    npi: Npi | None = None
    team: Team | None = None


class MemberRead(Outgoing):
    id: str
    name: str
    role: StaffRole
    practitioner_reference: str | None = None
    npi: str | None = None
    team: str
