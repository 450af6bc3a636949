"""Time spent on a patient's care: the entry of record for monthly billing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fhirbridge.domain.enrollment import Program
from fhirbridge.domain.people import StaffRole


class TimeEntryActivity(StrEnum):
    CHECK_IN_CALL = "check-in-call"
    CARE_COORDINATION = "care-coordination"
    MEDICATION_RECONCILIATION = "medication-reconciliation"
    CARE_PLAN_DEVELOPMENT = "care-plan-development"
    EDUCATION = "education"
    REFERRAL_COORDINATION = "referral-coordination"
    ASSESSMENT = "assessment"


class ContactMode(StrEnum):
    VIRTUAL = "virtual"  # telephone, video, portal
    IN_PERSON = "in-person"


class TimeEntryStatus(StrEnum):
    IN_PROGRESS = "in-progress"  # a running timer
    FINISHED = "finished"
    ENTERED_IN_ERROR = "entered-in-error"


@dataclass(slots=True)
class TimeEntry:
    """Minutes of care-management work by one staff member for one patient and program.

    ``notes`` stay local: they may hold details that must not leave the practice.
    """

    id: str
    status: TimeEntryStatus
    # Entries fhirbridge records always carry the fields below (the workflow layer requires
    # them); Encounters read from other systems may lack any of them, and billing counts
    # only entries that have what its rules need.
    patient_id: str | None = None
    enrollment_id: str | None = None
    program: Program | None = None
    staff_id: str | None = None
    staff_role: StaffRole | None = None
    activity: TimeEntryActivity | None = None
    mode: ContactMode | None = None
    start: datetime | None = None
    end: datetime | None = None
    minutes: int | None = None
    interactive: bool | None = None  # a real-time exchange with the patient (RPM needs one a month)
    notes: str | None = None

    @property
    def duration_minutes(self) -> int | None:
        if self.minutes is not None:
            return self.minutes
        if self.start is None or self.end is None:
            return None
        return int((self.end - self.start).total_seconds() // 60)
