"""Who is cared for and who does the caring."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StaffRole(StrEnum):
    """Roles that billing rules distinguish: whose minutes count for which code."""

    PHYSICIAN = "physician"  # physician or other qualified health professional (NP, PA, CNS)
    RN = "rn"
    LCSW = "lcsw"
    CHW = "chw"
    CLINICAL_STAFF = "clinical-staff"  # MA, LPN and other staff under general supervision
    BH_CARE_MANAGER = "bh-care-manager"
    NAVIGATOR = "navigator"


@dataclass(slots=True)
class PatientLink:
    """Our local patient id, tied to the EHR's Patient.

    The EHR owns demographics; we keep only what we need to point at its Patient resource.
    """

    id: str
    ehr_reference: str  # "Patient/123" on the EHR's FHIR server
    mrn_system: str | None = None
    mrn_value: str | None = None
    team: str = "default"


@dataclass(slots=True)
class CareTeamMember:
    id: str
    name: str
    role: StaffRole
    practitioner_reference: str | None = None  # "Practitioner/abc" on the EHR
    npi: str | None = None
    team: str = "default"
