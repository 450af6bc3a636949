"""What a caller of fhirbridge may do: the roles a bearer token or an API key grants.

Not ``StaffRole`` (what a care-team member is, for billing): one person may be an RN who
works as a care manager in the API, or a physician with the supervisor role.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CARE_MANAGER = "care-manager"  # records their own time, works with their team's patients
    SUPERVISOR = "supervisor"  # everything for their team, including others' time
    BILLING = "billing"
    ADMIN = "admin"
