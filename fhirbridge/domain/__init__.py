"""Care-management domain: what care managers do, in their words.

Pure Python: no HTTP, SQL or FHIR here. The mapping layer translates these objects to FHIR R4
resources and back; persistence stores them; services orchestrate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirbridge import lazy_exports

# Each name's submodule is imported on first use (``lazy_exports``): a command that needs one
# of them does not pay for the others.
if TYPE_CHECKING:
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
    from fhirbridge.domain.timeentry import (
        ContactMode,
        TimeEntry,
        TimeEntryActivity,
        TimeEntryStatus,
    )
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

__getattr__ = lazy_exports(
    __name__,
    {
        "ConditionPeriod": "apcm",
        "QmbPeriod": "apcm",
        "AssessmentAnswer": "assessment",
        "AssessmentResponse": "assessment",
        "AssessmentStatus": "assessment",
        "ConcernStatus": "assessment",
        "HealthConcern": "assessment",
        "ScreeningObservation": "assessment",
        "ScreeningStatus": "assessment",
        "CarePlan": "careplan",
        "CarePlanStatus": "careplan",
        "CareTeamParticipant": "careteam",
        "CareTeamRole": "careteam",
        "CareTeamStatus": "careteam",
        "PatientCareTeam": "careteam",
        "ChargeStatus": "charge",
        "MonthlyCharge": "charge",
        "Code": "codes",
        "ConsentMethod": "enrollment",
        "ConsentStatus": "enrollment",
        "Enrollment": "enrollment",
        "EnrollmentStatus": "enrollment",
        "Program": "enrollment",
        "ProgramConsent": "enrollment",
        "RiskLevel": "enrollment",
        "AchievementStatus": "goal",
        "Goal": "goal",
        "GoalLifecycle": "goal",
        "GoalTarget": "goal",
        "DeviceReading": "observation",
        "CareTeamMember": "people",
        "PatientLink": "people",
        "StaffRole": "people",
        "Party": "referral",
        "Referral": "referral",
        "ReferralKind": "referral",
        "ReferralStatus": "referral",
        "ReferralTaskStatus": "referral",
        "Role": "roles",
        "CareTask": "task",
        "CareTaskKind": "task",
        "TaskPriority": "task",
        "TaskStatus": "task",
        "TaskTransitionError": "task",
        "ContactMode": "timeentry",
        "TimeEntry": "timeentry",
        "TimeEntryActivity": "timeentry",
        "TimeEntryStatus": "timeentry",
        "DischargeSetting": "transitional_care",
        "TcmComplexity": "transitional_care",
        "TcmContact": "transitional_care",
        "TcmContactKind": "transitional_care",
        "TcmPeriod": "transitional_care",
        "TcmPeriodStatus": "transitional_care",
    },
)
