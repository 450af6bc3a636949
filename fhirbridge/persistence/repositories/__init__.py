"""Repositories: domain objects in, domain objects out; they flush but never commit."""

from fhirbridge.persistence.repositories.care_plans import CarePlans
from fhirbridge.persistence.repositories.care_tasks import CareTasks
from fhirbridge.persistence.repositories.enrollments import Enrollments, ProgramConsents
from fhirbridge.persistence.repositories.fhir_links import FhirLinks
from fhirbridge.persistence.repositories.goals import Goals
from fhirbridge.persistence.repositories.outbox import Clock, Outbox, utc_now
from fhirbridge.persistence.repositories.people import CareTeam, PatientLinks
from fhirbridge.persistence.repositories.referrals import Referrals
from fhirbridge.persistence.repositories.time_entries import TimeEntries

__all__ = [
    "CarePlans",
    "CareTasks",
    "CareTeam",
    "Clock",
    "Enrollments",
    "FhirLinks",
    "Goals",
    "Outbox",
    "PatientLinks",
    "ProgramConsents",
    "Referrals",
    "TimeEntries",
    "utc_now",
]
