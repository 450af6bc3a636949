"""A care manager's caseload with work of every kind (fixtures/workflow/worklist.yaml), on top
of the API caseload (fixtures/api/caseload.yaml): shared by the worklist's API tests and the
tests of its read model."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import yaml

from fhirbridge.domain import (
    CareTask,
    CareTaskKind,
    ConsentMethod,
    ConsentStatus,
    ContactMode,
    Enrollment,
    EnrollmentStatus,
    Goal,
    GoalLifecycle,
    PatientLink,
    Program,
    ProgramConsent,
    Referral,
    ReferralKind,
    ReferralStatus,
    RiskLevel,
    StaffRole,
    TaskPriority,
    TaskStatus,
    TimeEntry,
    TimeEntryActivity,
    TimeEntryStatus,
)
from fhirbridge.domain.codes import Code
from fhirbridge.persistence import EntityKind, Store, SyncTarget, make_engine, unit_of_work
from tests.conftest import FIXTURES
from tests.sessions import session_factory

__all__ = ["WORKLIST", "load_worklist", "store_worklist", "time_entry"]

WORKLIST = yaml.safe_load((FIXTURES / "workflow" / "worklist.yaml").read_text())


def _day(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(str(value))


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def load_worklist(url: str) -> None:
    """Store the worklist caseload (fixtures/workflow/worklist.yaml) in the database at
    ``url``; its care team members come from fixtures/api/caseload.yaml."""
    engine = make_engine(url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            store_worklist(Store(session))
    finally:
        engine.dispose()


def store_worklist(store: Store) -> None:
    for p in WORKLIST["patients"]:
        store.save(PatientLink(**p))
    for e in WORKLIST["enrollments"]:
        enrollment = Enrollment(
            id=e["id"],
            patient_id=e["patient_id"],
            program=Program(e["program"]),
            status=EnrollmentStatus.ACTIVE,
            start=_day(e["start"]) or date.min,
            risk_level=RiskLevel(e["risk_level"]) if e.get("risk_level") else None,
            care_manager_id=e["care_manager_id"],
        )
        store.save(enrollment)
        store.save(
            ProgramConsent(
                id=f"con-{e['id']}",
                patient_id=enrollment.patient_id,
                enrollment_id=enrollment.id,
                program=enrollment.program,
                status=ConsentStatus.ACTIVE,
                given_on=_day(e["consent_given_on"]) or date.min,
                method=ConsentMethod.VERBAL,
                recorded_by_id="cm-north",
            )
        )
    for t in WORKLIST["time_entries"]:
        store.save(time_entry(**t))
    for t in WORKLIST["tasks"]:
        store.save(
            CareTask(
                id=t["id"],
                status=TaskStatus(t["status"]),
                patient_id=t["patient_id"],
                kind=CareTaskKind(t["kind"]),
                priority=TaskPriority(t["priority"]) if t.get("priority") else None,
                owner_id=t.get("owner_id"),
                due_end=_day(t.get("due_end")),
            )
        )
    for r in WORKLIST["referrals"]:
        store.save(
            Referral(
                id=r["id"],
                status=ReferralStatus.ACTIVE,
                patient_id=r["patient_id"],
                kind=ReferralKind.SPECIALIST,
                service=Code("snomed", "3457005", "Patient referral"),
                authored_on=_moment(r["authored_on"]),
                requester_id="cm-north",
                task_status=TaskStatus(r["task_status"]),
            )
        )
    for g in WORKLIST["goals"]:
        store.save(Goal(lifecycle_status=GoalLifecycle.ACTIVE, **g))
    for c in WORKLIST["conflicts"]:
        target = SyncTarget(EntityKind(c["entity_kind"]), c["local_id"], c["resource_type"])
        store.conflicts.record(
            target=target,
            reason=c["reason"],
            fields=["description"],
            local={"resourceType": c["resource_type"]},
            remote={"resourceType": c["resource_type"]},
        )


def time_entry(
    *, id: str, patient_id: str, enrollment_id: str, activity: str, start: str, minutes: int
) -> TimeEntry:
    """A finished CCM entry by Nora North (cm-north, rn), as the fixture's entries are."""
    begun = _moment(start)
    return TimeEntry(
        id=id,
        status=TimeEntryStatus.FINISHED,
        patient_id=patient_id,
        enrollment_id=enrollment_id,
        program=Program.CCM,
        staff_id="cm-north",
        staff_role=StaffRole.RN,
        activity=TimeEntryActivity(activity),
        mode=ContactMode.VIRTUAL,
        start=begun,
        end=begun + timedelta(minutes=minutes),
        minutes=minutes,
    )
