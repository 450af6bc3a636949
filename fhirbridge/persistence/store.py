"""The store: every repository over one session, and the one way to save a change that has to
reach the FHIR server.

``Store.save(entity)`` writes the record and one outbox entry per resource type the record
syncs as, in the caller's transaction, so either both happen or neither does. Which resource
types those are comes from the mapping files (the session's ``SyncPlan``, see
``make_session_factory``), never from the caller. Patients and care-team members are the EHR's
and sync as nothing. Nothing here commits; the unit of work does.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy.orm import Session

from fhirbridge.domain import (
    AssessmentResponse,
    CarePlan,
    CareTask,
    CareTeamMember,
    Enrollment,
    Goal,
    HealthConcern,
    MonthlyCharge,
    PatientLink,
    ProgramConsent,
    Referral,
    ScreeningObservation,
    TimeEntry,
)
from fhirbridge.domain.careteam import PatientCareTeam
from fhirbridge.domain.transitional_care import TcmContact, TcmPeriod
from fhirbridge.mapping.concepts import CONCEPTS
from fhirbridge.mapping.plan import SyncPlan
from fhirbridge.persistence.db import sync_plan_of
from fhirbridge.persistence.readmodels.device_days import DeviceDays
from fhirbridge.persistence.readmodels.export_selection import ExportSelectionRows
from fhirbridge.persistence.readmodels.month_minutes import MonthMinutes
from fhirbridge.persistence.readmodels.patient_access import PatientAccess
from fhirbridge.persistence.readmodels.worklist import WorklistRows
from fhirbridge.persistence.records import EntityKind, OutboxOperation, SyncTarget
from fhirbridge.persistence.repositories import (
    CarePlans,
    CareTasks,
    CareTeam,
    Clock,
    Enrollments,
    FhirLinks,
    Goals,
    Outbox,
    PatientLinks,
    ProgramConsents,
    Referrals,
    TimeEntries,
    utc_now,
)
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.repositories.apcm_facts import ApcmFacts
from fhirbridge.persistence.repositories.api_keys import ApiKeys
from fhirbridge.persistence.repositories.assessments import (
    Assessments,
    HealthConcerns,
    ScreeningObservations,
)
from fhirbridge.persistence.repositories.audit import AuditTrail
from fhirbridge.persistence.repositories.charges import Charges
from fhirbridge.persistence.repositories.conflicts import Conflicts
from fhirbridge.persistence.repositories.device_readings import DeviceReadings
from fhirbridge.persistence.repositories.idempotency import IdempotencyRecords
from fhirbridge.persistence.repositories.patient_care_teams import PatientCareTeams
from fhirbridge.persistence.repositories.sync_cursors import SyncCursors
from fhirbridge.persistence.repositories.timers import RunningTimers
from fhirbridge.persistence.repositories.transitional_care import TcmContacts, TcmPeriods

Record = (
    PatientLink
    | CareTeamMember
    | Enrollment
    | ProgramConsent
    | CarePlan
    | Goal
    | CareTask
    | TimeEntry
    | Referral
    | MonthlyCharge
    | PatientCareTeam
    | AssessmentResponse
    | ScreeningObservation
    | HealthConcern
    | TcmPeriod
    | TcmContact
)

_KINDS: dict[type[Any], EntityKind] = {
    PatientLink: EntityKind.PATIENT_LINK,
    CareTeamMember: EntityKind.CARE_TEAM_MEMBER,
    Enrollment: EntityKind.ENROLLMENT,
    ProgramConsent: EntityKind.PROGRAM_CONSENT,
    CarePlan: EntityKind.CARE_PLAN,
    Goal: EntityKind.GOAL,
    CareTask: EntityKind.CARE_TASK,
    TimeEntry: EntityKind.TIME_ENTRY,
    Referral: EntityKind.REFERRAL,
    MonthlyCharge: EntityKind.CHARGE,
    PatientCareTeam: EntityKind.PATIENT_CARE_TEAM,
    AssessmentResponse: EntityKind.ASSESSMENT,
    ScreeningObservation: EntityKind.SCREENING_OBSERVATION,
    HealthConcern: EntityKind.HEALTH_CONCERN,
    TcmPeriod: EntityKind.TCM_PERIOD,
    TcmContact: EntityKind.TCM_CONTACT,
}


def entity_kind_of(entity: Record) -> EntityKind:
    return _KINDS[type(entity)]


class SyncPlanMissing(RuntimeError):
    """A record that syncs was saved through a session that has no sync plan: its outbox
    entries cannot be written, and saving it without them would lose the change silently."""

    def __init__(self, kind: EntityKind) -> None:
        self.kind = kind
        super().__init__(
            f"cannot save a {kind.value} without a sync plan: build the session factory with "
            "make_session_factory(engine, sync_plan=mappings.plan)"
        )


class Store:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self.session = session
        self._plan: SyncPlan | None = sync_plan_of(session)
        self.patients = PatientLinks(session)
        self.care_team = CareTeam(session)
        self.enrollments = Enrollments(session)
        self.consents = ProgramConsents(session)
        self.care_plans = CarePlans(session)
        self.goals = Goals(session)
        self.care_tasks = CareTasks(session)
        self.time_entries = TimeEntries(session)
        self.referrals = Referrals(session)
        self.outbox = Outbox(session, clock=clock)
        self.fhir_links = FhirLinks(session)
        self.conflicts = Conflicts(session, clock=clock)
        self.cursors = SyncCursors(session, clock=clock)
        # Workflow layer (the REST API).
        self.audit = AuditTrail(session, clock=clock)
        self.idempotency = IdempotencyRecords(session, clock=clock)
        self.api_keys = ApiKeys(session, clock=clock)
        self.timers = RunningTimers(session)
        # Billing.
        self.charges = Charges(session)
        # APCM tier facts (QMB and condition periods); patients' care teams.
        self.apcm_facts = ApcmFacts(session)
        self.patient_care_teams = PatientCareTeams(session)
        # Assessments and screening.
        self.assessments = Assessments(session)
        self.screening_observations = ScreeningObservations(session)
        self.health_concerns = HealthConcerns(session)
        # Transitional care (TCM periods and their contacts).
        self.tcm_periods = TcmPeriods(session)
        self.tcm_contacts = TcmContacts(session)
        # Monitoring (RPM device readings).
        self.device_readings = DeviceReadings(session)
        # Read models: queries shaped for one report or screen.
        self.month_minutes = MonthMinutes(session)
        self.patient_access = PatientAccess(session)
        self.worklist_rows = WorklistRows(session)
        self.export_selection = ExportSelectionRows(session)
        self.device_days = DeviceDays(session)
        self._by_kind: dict[EntityKind, Repository[Any, Any]] = {
            repository.kind: repository
            for repository in (
                self.patients,
                self.care_team,
                self.enrollments,
                self.consents,
                self.care_plans,
                self.goals,
                self.care_tasks,
                self.time_entries,
                self.referrals,
                self.charges,
                self.patient_care_teams,
                self.assessments,
                self.screening_observations,
                self.health_concerns,
                self.tcm_periods,
                self.tcm_contacts,
            )
        }

    def repository(self, entity_kind: EntityKind) -> Repository[Any, Any]:
        return self._by_kind[entity_kind]

    def sync_targets(self, entity_kind: EntityKind) -> tuple[str, ...]:
        """The resource types a record of this kind syncs as (primary first); () for records
        that never sync (patients, care-team members)."""
        if entity_kind.value not in CONCEPTS:
            return ()
        plan = self._plan
        if plan is None:
            raise SyncPlanMissing(entity_kind)
        return plan.targets(entity_kind.value)

    def save(self, entity: Record, *, skip: Collection[str] = (), new: bool = False) -> list[int]:
        """Insert or update ``entity`` and mark it for pushing as every resource type it syncs
        as, except those in ``skip`` (a record just read from a server resource is already
        up to date there). ``new``: the record has a fresh id, so it is inserted without first
        looking for a stored one (an id already stored raises RecordExists).

        Returns the outbox entry ids, one per resource type, primary first.
        """
        kind = entity_kind_of(entity)
        targets = self.sync_targets(kind)
        repository = self._by_kind[kind]
        if new:
            repository.add(entity)
        else:
            repository.save(entity)
        return self._announce(kind, entity.id, targets, skip, OutboxOperation.UPSERT)

    def delete(
        self, entity_kind: EntityKind, local_id: str, *, skip: Collection[str] = ()
    ) -> list[int]:
        """Delete the local record and mark its server copies (all but ``skip``) for deletion.

        The FHIR links stay: the worker needs them to know what to delete on the server.
        """
        targets = self.sync_targets(entity_kind)
        self._by_kind[entity_kind].delete(local_id)
        return self._announce(entity_kind, local_id, targets, skip, OutboxOperation.DELETE)

    def _announce(
        self,
        kind: EntityKind,
        local_id: str,
        resource_types: tuple[str, ...],
        skip: Collection[str],
        operation: OutboxOperation,
    ) -> list[int]:
        return [
            self.outbox.enqueue(SyncTarget(kind, local_id, resource_type), operation=operation)
            for resource_type in resource_types
            if resource_type not in skip
        ]
