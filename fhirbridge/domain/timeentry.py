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
    patient_id: str
    enrollment_id: str
    program: Program
    staff_id: str
    staff_role: StaffRole
    activity: TimeEntryActivity
    mode: ContactMode
    status: TimeEntryStatus
    start: datetime
    end: datetime | None = None
    minutes: int | None = None
    interactive: bool = False  # a real-time exchange with the patient (RPM needs one a month)
    notes: str | None = None

    @property
    def duration_minutes(self) -> int | None:
        if self.minutes is not None:
            return self.minutes
        if self.end is None:
            return None
        return int((self.end - self.start).total_seconds() // 60)
