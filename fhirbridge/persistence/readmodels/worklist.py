"""A care manager's worklist, read in a fixed number of queries (``store.worklist_rows``).

Every statement narrows to the caseload with the same subquery: the patients of the staff
member's team whose active or on-hold enrollment names them as care manager. So the worklist
costs one query per kind of work whatever the caseload size, and nothing queries per patient.
What is due, how urgently and in which order is the service's judgement
(``fhirbridge.services.worklist``); this module only reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Select,
    Table,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from fhirbridge.domain import (
    CareTeamMember,
    EnrollmentStatus,
    Program,
    RiskLevel,
    StaffRole,
    TaskPriority,
    TaskStatus,
    TimeEntryActivity,
    TimeEntryStatus,
)
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories.conflicts import ConflictState
from fhirbridge.persistence.tables import (
    CarePlanRow,
    CareTaskRow,
    CareTeamMemberRow,
    ChargeRow,
    EnrollmentRow,
    GoalRow,
    PatientLinkRow,
    ProgramConsentRow,
    ReferralRow,
    SyncConflictRow,
    TimeEntryRow,
)

__all__ = [
    "AwaitingReferral",
    "CaseloadEnrollment",
    "OpenConflict",
    "OpenTask",
    "WorklistRows",
]

CARING = (EnrollmentStatus.ACTIVE.value, EnrollmentStatus.ON_HOLD.value)
OPEN_TASKS = tuple(
    s.value
    for s in (
        TaskStatus.REQUESTED,
        TaskStatus.RECEIVED,
        TaskStatus.ACCEPTED,
        TaskStatus.READY,
        TaskStatus.IN_PROGRESS,
        TaskStatus.ON_HOLD,
    )
)
AWAITING_RESPONSE = (TaskStatus.REQUESTED.value, TaskStatus.RECEIVED.value)

# Records that belong to a patient, by the kind sync conflicts name them with.
_PATIENT_RECORDS: tuple[tuple[EntityKind, Any], ...] = (
    (EntityKind.ENROLLMENT, EnrollmentRow),
    (EntityKind.PROGRAM_CONSENT, ProgramConsentRow),
    (EntityKind.CARE_PLAN, CarePlanRow),
    (EntityKind.GOAL, GoalRow),
    (EntityKind.CARE_TASK, CareTaskRow),
    (EntityKind.TIME_ENTRY, TimeEntryRow),
    (EntityKind.REFERRAL, ReferralRow),
    (EntityKind.CHARGE, ChargeRow),
)


@dataclass(frozen=True, slots=True)
class CaseloadEnrollment:
    """One active or on-hold enrollment naming the care manager (a patient may have several)."""

    patient_id: str
    program: Program
    risk_level: RiskLevel | None
    start_on: date


@dataclass(frozen=True, slots=True)
class OpenTask:
    id: str
    patient_id: str | None
    kind: str | None
    status: str
    priority: TaskPriority | None
    due_end: date | None
    description: str | None


@dataclass(frozen=True, slots=True)
class AwaitingReferral:
    id: str
    patient_id: str | None
    task_status: str
    authored_at: datetime | None
    priority: TaskPriority | None


@dataclass(frozen=True, slots=True)
class OpenConflict:
    id: int
    entity_kind: str
    local_id: str
    resource_type: str
    reason: str
    detected_at: datetime | None  # aware, UTC
    patient_id: str


class WorklistRows:
    """What is open about one care manager's caseload, one statement per question.

    The statements are built once (``_Statements``) with the staff member as a bound
    parameter: building them, the conflicts' eight-way UNION above all, cost more CPU per
    request than running them.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def _execute(self, statement: Any, parameters: dict[str, Any]) -> Any:
        # On the connection: the rows are plain columns, and a read has nothing to flush, so
        # the session's ORM handling of each statement is work for nothing.
        return self._session.connection().execute(statement, parameters)

    def member(self, staff_id: str) -> CareTeamMember | None:
        """The staff member whose worklist it is (as ``store.care_team.get`` has them)."""
        row = self._execute(_STATEMENTS.member, {"staff_id": staff_id}).first()
        if row is None:
            return None
        return CareTeamMember(
            id=row[0],
            name=row[1],
            role=StaffRole(row[2]),
            practitioner_reference=row[3],
            npi=row[4],
            team=row[5],
        )

    def caseload(self, staff_id: str) -> list[CaseloadEnrollment]:
        return [
            CaseloadEnrollment(
                patient_id=patient_id,
                program=Program(program),
                risk_level=RiskLevel(risk_level) if risk_level else None,
                start_on=start,
            )
            for patient_id, program, risk_level, start in self._execute(
                _STATEMENTS.caseload, {"staff_id": staff_id}
            )
        ]

    def last_check_ins(self, staff_id: str) -> dict[str, datetime]:
        """When each caseload patient's latest finished check-in call started; patients never
        called are absent."""
        return {
            patient_id: last
            for patient_id, last in self._execute(
                _STATEMENTS.last_check_ins, {"staff_id": staff_id}
            )
            if patient_id is not None and last is not None
        }

    def open_tasks(self, staff_id: str) -> list[OpenTask]:
        """Open tasks owned by the care manager, or unowned and about a caseload patient."""
        return [
            OpenTask(
                id=task_id,
                patient_id=patient_id,
                kind=kind,
                status=status,
                priority=TaskPriority(priority) if priority else None,
                due_end=due,
                description=description,
            )
            for task_id, patient_id, kind, status, priority, due, description in (
                self._execute(_STATEMENTS.open_tasks, {"staff_id": staff_id})
            )
        ]

    def awaiting_referrals(self, staff_id: str) -> list[AwaitingReferral]:
        """Active referrals of caseload patients whose tracker the performer has not answered
        (requested or received)."""
        return [
            AwaitingReferral(
                id=referral_id,
                patient_id=patient_id,
                task_status=task_status,
                authored_at=authored_at,
                priority=TaskPriority(priority) if priority else None,
            )
            for referral_id, patient_id, task_status, authored_at, priority in (
                self._execute(_STATEMENTS.awaiting_referrals, {"staff_id": staff_id})
            )
        ]

    def open_conflicts(self, staff_id: str) -> list[OpenConflict]:
        """Open sync conflicts on records of caseload patients, in one UNION over the record
        tables."""
        return [
            OpenConflict(
                id=int(conflict_id),
                entity_kind=kind,
                local_id=local_id,
                resource_type=resource_type,
                reason=reason,
                detected_at=_utc(detected_at),
                patient_id=patient_id,
            )
            for conflict_id, kind, local_id, resource_type, reason, detected_at, patient_id in (
                self._execute(_STATEMENTS.open_conflicts, {"staff_id": staff_id})
            )
        ]


def _values(values: tuple[str, ...]) -> list[BindParameter[str]]:
    """An IN list of fixed values as ordinary bound parameters. Given plain values, IN
    becomes an "expanding" parameter that is spliced into the SQL text at every execution,
    and the driver then parses that new text again: on the conflicts' eight-way UNION that
    cost more than running it."""
    return [literal(value) for value in values]


def _caseload_ids(staff_id: BindParameter[str]) -> Select[str]:
    """Patients of the staff member's team whose current enrollment names them."""
    return (
        select(EnrollmentRow.patient_id)
        .join(PatientLinkRow, PatientLinkRow.id == EnrollmentRow.patient_id)
        .join(CareTeamMemberRow, CareTeamMemberRow.id == EnrollmentRow.care_manager_id)
        .where(
            EnrollmentRow.care_manager_id == staff_id,
            EnrollmentRow.status.in_(_values(CARING)),
            PatientLinkRow.team == CareTeamMemberRow.team,
        )
    )


class _Statements:
    """The worklist's statements, built once; each takes the bound parameter ``staff_id``."""

    def __init__(self) -> None:
        staff_id: BindParameter[str] = bindparam("staff_id", type_=CareTeamMemberRow.id.type)
        member = CareTeamMemberRow.__table__.c
        self.member = select(
            member.id,
            member.name,
            member.role,
            member.practitioner_reference,
            member.npi,
            member.team,
        ).where(member.id == staff_id)
        caseload = _caseload_ids(staff_id)
        self.caseload = caseload.add_columns(
            EnrollmentRow.program, EnrollmentRow.risk_level, EnrollmentRow.start_on
        )
        entry = TimeEntryRow
        self.last_check_ins = (
            select(entry.patient_id, func.max(entry.started_at))
            .where(
                entry.status == TimeEntryStatus.FINISHED.value,
                entry.activity == TimeEntryActivity.CHECK_IN_CALL.value,
                entry.patient_id.in_(caseload),
            )
            .group_by(entry.patient_id)
        )
        task = CareTaskRow
        self.open_tasks = select(
            task.id,
            task.patient_id,
            task.kind,
            task.status,
            task.priority,
            task.due_end,
            task.description,
        ).where(
            task.status.in_(_values(OPEN_TASKS)),
            or_(
                task.owner_id == staff_id,
                and_(task.owner_id.is_(None), task.patient_id.in_(caseload)),
            ),
        )
        referral = ReferralRow
        self.awaiting_referrals = select(
            referral.id,
            referral.patient_id,
            referral.task_status,
            referral.authored_at,
            referral.priority,
        ).where(
            referral.patient_id.in_(caseload),
            referral.task_status.in_(_values(AWAITING_RESPONSE)),
            referral.status == "active",
        )
        # The caseload once, as a CTE, and the conflicts under a short alias: the statement
        # stays under the 4 096 characters up to which psycopg keeps a parsed query, instead
        # of being parsed again on every request.
        in_caseload = select(caseload.cte("caseload").c.patient_id)
        conflict = cast(Table, SyncConflictRow.__table__).alias("c").c
        self.open_conflicts: CompoundSelect[Any] = union_all(
            *(
                select(
                    conflict.id,
                    conflict.entity_kind,
                    conflict.local_id,
                    conflict.resource_type,
                    conflict.reason,
                    conflict.detected_at,
                    row.patient_id.label("patient_id"),
                )
                .join(row, and_(row.id == conflict.local_id, conflict.entity_kind == kind.value))
                .where(conflict.state == ConflictState.OPEN.value, row.patient_id.in_(in_caseload))
                for kind, row in _PATIENT_RECORDS
            )
        )


_STATEMENTS = _Statements()


def _utc(moment: Any) -> datetime | None:
    # A UNION's columns come back without the column type's processing, so SQLite hands over
    # the stored UTC text; both backends end up as an aware UTC datetime.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if not isinstance(moment, datetime):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
