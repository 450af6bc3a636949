"""Care-management domain: what care managers do, in their words.

Pure Python: no HTTP, SQL or FHIR here. The mapping layer translates these objects to FHIR R4
resources and back; persistence stores them; services orchestrate.
"""

from fhirbridge.domain.careplan import CarePlan, CarePlanStatus
from fhirbridge.domain.charge import ChargeStatus, MonthlyCharge
from fhirbridge.domain.codes import Code
from fhirbridge.domain.enrollment import (
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    RiskLevel,
)
from fhirbridge.domain.goal import AchievementStatus, Goal, GoalLifecycle, GoalTarget
from fhirbridge.domain.people import CareTeamMember, PatientLink, StaffRole
from fhirbridge.domain.referral import (
    Party,
    Referral,
    ReferralKind,
    ReferralStatus,
    ReferralTaskStatus,
)
from fhirbridge.domain.roles import Role
from fhirbridge.domain.task import (
    CareTask,
    CareTaskKind,
    TaskPriority,
    TaskStatus,
    TaskTransitionError,
)
from fhirbridge.domain.timeentry import ContactMode, TimeEntry, TimeEntryActivity, TimeEntryStatus

__all__ = [
    "AchievementStatus",
    "CarePlan",
    "CarePlanStatus",
    "CareTask",
    "CareTaskKind",
    "CareTeamMember",
    "ChargeStatus",
    "Code",
    "ConsentMethod",
    "ConsentStatus",
    "ContactMode",
    "Enrollment",
    "EnrollmentStatus",
    "Goal",
    "GoalLifecycle",
    "GoalTarget",
    "MonthlyCharge",
    "Party",
    "PatientLink",
    "Program",
    "ProgramConsent",
    "Referral",
    "ReferralKind",
    "ReferralStatus",
    "ReferralTaskStatus",
    "RiskLevel",
    "Role",
    "StaffRole",
    "TaskPriority",
    "TaskStatus",
    "TaskTransitionError",
    "TimeEntry",
    "TimeEntryActivity",
    "TimeEntryStatus",
]
