"""The domain concepts that mapping files may name, and their classes."""

from __future__ import annotations

from enum import StrEnum

from fhirbridge import domain

CONCEPTS: dict[str, type] = {
    "enrollment": domain.Enrollment,
    "program_consent": domain.ProgramConsent,
    "care_plan": domain.CarePlan,
    "goal": domain.Goal,
    "care_task": domain.CareTask,
    "time_entry": domain.TimeEntry,
    "referral": domain.Referral,
    "charge": domain.MonthlyCharge,
    "tcm_contact": domain.TcmContact,
    "assessment": domain.AssessmentResponse,
    "screening_observation": domain.ScreeningObservation,
    "health_concern": domain.HealthConcern,
    "patient_care_team": domain.PatientCareTeam,
}

_CONCEPT_OF_CLASS = {cls: name for name, cls in CONCEPTS.items()}


def concept_of(record: object) -> str:
    """The concept name of a domain record (the same name storage uses for its kind)."""
    return _CONCEPT_OF_CLASS[type(record)]


# Concepts fhirbridge refers to but does not own as resources: the EHR owns Patient and
# Practitioner, we only hold links to them.
LINKED_CONCEPTS = frozenset({"patient", "member"})

ENUMS: dict[str, type[StrEnum]] = {
    name: obj
    for name in domain.__all__
    if isinstance(obj := getattr(domain, name), type) and issubclass(obj, StrEnum)
}
