"""Synthetic caseloads of any size, for load tests, fault tests and benchmarks.

Each patient gets what a care manager's month produces: a CCM enrollment with consent, a goal,
a care plan, a check-in task and a time entry: six FHIR resources a patient.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fhirbridge import domain
from fhirbridge.caseload import Caseload
from fhirbridge.domain import Code

__all__ = ["RESOURCES_PER_PATIENT", "synthetic_caseload", "synthetic_patients"]

RESOURCES_PER_PATIENT = 6
_MEMBERS = [
    domain.CareTeamMember("s-rn", "Synthetic RN", domain.StaffRole.RN, "Practitioner/syn-rn"),
    domain.CareTeamMember(
        "s-md", "Synthetic MD", domain.StaffRole.PHYSICIAN, "Practitioner/syn-md"
    ),
]


def synthetic_caseload(patients: int, *, start: int = 0) -> Caseload:
    caseload = Caseload(members=list(_MEMBERS))
    for records in synthetic_patients(patients, start=start):
        for record in records:
            section = _SECTION[type(record)]
            getattr(caseload, section).append(record)
    return caseload


_SECTION: dict[type, str] = {
    domain.PatientLink: "patients",
    domain.Enrollment: "enrollments",
    domain.ProgramConsent: "consents",
    domain.Goal: "goals",
    domain.CarePlan: "care_plans",
    domain.CareTask: "care_tasks",
    domain.TimeEntry: "time_entries",
}


def synthetic_patients(count: int, *, start: int = 0) -> Iterator[list[object]]:
    """The records of patients ``start`` .. ``start + count - 1``, one patient at a time."""
    for n in range(start, start + count):
        p = f"syn-{n:06d}"
        began = date(2026, 1, 5) + timedelta(days=n % 200)
        when = datetime(2026, 10, 1, 14, tzinfo=UTC) + timedelta(minutes=n % 5000)
        yield [
            domain.PatientLink(p, f"Patient/ehr-{p}"),
            domain.Enrollment(
                f"en-{p}",
                p,
                domain.Program.CCM,
                domain.EnrollmentStatus.ACTIVE,
                began,
                conditions=[f"Condition/{p}-dm", f"Condition/{p}-htn"],
                risk_level=domain.RiskLevel.MODERATE,
                care_manager_id="s-rn",
                billing_practitioner_id="s-md",
            ),
            domain.ProgramConsent(
                f"cs-{p}",
                p,
                f"en-{p}",
                domain.Program.CCM,
                domain.ConsentStatus.ACTIVE,
                began,
                domain.ConsentMethod.VERBAL,
                "s-rn",
            ),
            domain.Goal(
                f"g-{p}",
                p,
                domain.GoalLifecycle.ACTIVE,
                description="HbA1c below 7.5%",
                start=began,
                target=domain.GoalTarget(
                    measure=Code("loinc", "4548-4", "Hemoglobin A1c"),
                    high=Decimal("7.5"),
                    unit="%",
                    due=began + timedelta(days=365),
                ),
                expressed_by="s-md",
            ),
            domain.CarePlan(
                f"cp-{p}",
                p,
                domain.CarePlanStatus.ACTIVE,
                title="Chronic care management plan",
                narrative="Monthly check-in calls; medication review each quarter.",
                enrollment_id=f"en-{p}",
                author_id="s-md",
                start=began,
                problems=[f"Condition/{p}-dm", f"Condition/{p}-htn"],
                goal_ids=[f"g-{p}"],
                task_ids=[f"t-{p}"],
            ),
            domain.CareTask(
                f"t-{p}",
                domain.TaskStatus.REQUESTED,
                patient_id=p,
                kind=domain.CareTaskKind.CHECK_IN_CALL,
                authored_on=when,
                owner_id="s-rn",
                due_start=date(2026, 10, 1),
                due_end=date(2026, 10, 10),
                care_plan_id=f"cp-{p}",
            ),
            domain.TimeEntry(
                f"te-{p}",
                domain.TimeEntryStatus.FINISHED,
                patient_id=p,
                enrollment_id=f"en-{p}",
                program=domain.Program.CCM,
                staff_id="s-rn",
                staff_role=domain.StaffRole.RN,
                activity=domain.TimeEntryActivity.CHECK_IN_CALL,
                mode=domain.ContactMode.VIRTUAL,
                start=when,
                end=when + timedelta(minutes=22),
                minutes=22,
                interactive=True,
            ),
        ]
