"""Care-management domain: what care managers do, in their words.

Pure Python: no HTTP, SQL or FHIR here. The mapping layer translates these objects to FHIR R4
resources and back; persistence stores them; services orchestrate.
"""

from fhirbridge.domain.apcm import ConditionPeriod, QmbPeriod
from fhirbridge.domain.assessment import (
    AssessmentAnswer,
    AssessmentResponse,
    AssessmentStatus,
    ConcernStatus,
    HealthConcern,
    ScreeningObservation,
    ScreeningStatus,
)
from fhirbridge.domain.careplan import CarePlan, CarePlanStatus
from fhirbridge.domain.careteam import (
    CareTeamParticipant,
    CareTeamRole,
    CareTeamStatus,
    PatientCareTeam,
)
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
from fhirbridge.domain.observation import DeviceReading
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
from fhirbridge.domain.transitional_care import (
    DischargeSetting,
    TcmComplexity,
    TcmContact,
    TcmContactKind,
    TcmPeriod,
    TcmPeriodStatus,
)

__all__ = [
    "AchievementStatus",
    "AssessmentAnswer",
    "AssessmentResponse",
    "AssessmentStatus",
    "CarePlan",
    "CarePlanStatus",
    "CareTask",
    "CareTaskKind",
    "CareTeamMember",
    "CareTeamParticipant",
    "CareTeamRole",
    "CareTeamStatus",
    "ChargeStatus",
    "Code",
    "ConcernStatus",
    "ConditionPeriod",
    "ConsentMethod",
    "ConsentStatus",
    "ContactMode",
    "DeviceReading",
    "DischargeSetting",
    "Enrollment",
    "EnrollmentStatus",
    "Goal",
    "GoalLifecycle",
    "GoalTarget",
    "HealthConcern",
    "MonthlyCharge",
    "Party",
    "PatientCareTeam",
    "PatientLink",
    "Program",
    "ProgramConsent",
    "QmbPeriod",
    "Referral",
    "ReferralKind",
    "ReferralStatus",
    "ReferralTaskStatus",
    "RiskLevel",
    "Role",
    "ScreeningObservation",
    "ScreeningStatus",
    "StaffRole",
    "TaskPriority",
    "TaskStatus",
    "TaskTransitionError",
    "TcmComplexity",
    "TcmContact",
    "TcmContactKind",
    "TcmPeriod",
    "TcmPeriodStatus",
    "TimeEntry",
    "TimeEntryActivity",
    "TimeEntryStatus",
]
