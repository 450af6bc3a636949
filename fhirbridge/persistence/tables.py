"""The relational schema: one table per domain entity, plus the two the sync engine builds on.

Choices worth knowing:

- Ids are the domain's string ids. Enums are stored as their string values (no native enum
  types), so adding a status is a code change, not a migration on PostgreSQL.
- Timestamps are timezone-aware; SQLite has no such type, so ``UtcDateTime`` stores UTC and
  hands back aware datetimes on both backends.
- Value objects without identity (codes, a goal's target, lists of EHR references such as
  ``Condition/1``) are JSON columns: nothing queries inside them and JSON keeps them exact.
- A care plan's goals, tasks, referrals and contributors are link tables with a position: they
  point at our own rows, so the database keeps them honest, the order survives, and "which plans
  list this goal" (re-push the plan when the goal changes) is an indexed lookup. Their foreign
  keys to the listed rows are checked at commit, so a plan and the tasks that point back at it
  can be saved in either order within one unit of work.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(64)
ENUM = String(32)
REFERENCE = String(255)  # a reference on the EHR's server, e.g. "Practitioner/abc"
# JSONB on PostgreSQL: stored parsed, compact and comparable; plain JSON text elsewhere.
JSON_DOCUMENT = JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite's INTEGER PRIMARY KEY is its rowid alias; BIGINT would not autoincrement there.
SERIAL = BigInteger().with_variant(Integer(), "sqlite")

PENDING_ONLY = "state = 'pending'"


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, stored in UTC; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: persistence stores timezone-aware datetimes only")
        utc = value.astimezone(UTC)
        # SQLite keeps text; all-UTC naive text keeps comparisons (next_attempt_at <= now) right.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        str: String(255),
        datetime: UtcDateTime(),
        date: Date(),
        dict[str, Any]: JSON_DOCUMENT,
        list[Any]: JSON_DOCUMENT,
    }


def _member_fk() -> ForeignKey:
    return ForeignKey("care_team_members.id")


class PatientLinkRow(Base):
    __tablename__ = "patient_links"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ehr_reference: Mapped[str] = mapped_column(REFERENCE, unique=True)
    mrn_system: Mapped[str | None] = mapped_column(REFERENCE)
    mrn_value: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str] = mapped_column(String(64), index=True)


class CareTeamMemberRow(Base):
    __tablename__ = "care_team_members"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(ENUM)
    practitioner_reference: Mapped[str | None] = mapped_column(REFERENCE)
    npi: Mapped[str | None] = mapped_column(String(10))
    team: Mapped[str] = mapped_column(String(64), index=True)


class EnrollmentRow(Base):
    __tablename__ = "enrollments"
    __table_args__ = (CheckConstraint("end_on IS NULL OR end_on >= start_on", name="period"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"), index=True)
    program: Mapped[str] = mapped_column(ENUM)
    status: Mapped[str] = mapped_column(ENUM)
    start_on: Mapped[date]
    end_on: Mapped[date | None]
    conditions: Mapped[list[Any]]
    risk_level: Mapped[str | None] = mapped_column(ENUM)
    care_manager_id: Mapped[str | None] = mapped_column(ID, _member_fk(), index=True)
    billing_practitioner_id: Mapped[str | None] = mapped_column(ID, _member_fk())


class ProgramConsentRow(Base):
    __tablename__ = "program_consents"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"), index=True)
    enrollment_id: Mapped[str] = mapped_column(ID, ForeignKey("enrollments.id"), index=True)
    program: Mapped[str] = mapped_column(ENUM)
    status: Mapped[str] = mapped_column(ENUM)
    given_on: Mapped[date]
    method: Mapped[str] = mapped_column(ENUM)
    recorded_by_id: Mapped[str] = mapped_column(ID, _member_fk())
    scope: Mapped[dict[str, Any] | None]


class CarePlanRow(Base):
    __tablename__ = "care_plans"
    __table_args__ = (
        CheckConstraint("end_on IS NULL OR start_on IS NULL OR end_on >= start_on", name="period"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"), index=True)
    status: Mapped[str] = mapped_column(ENUM)
    title: Mapped[str | None] = mapped_column(Text)
    narrative: Mapped[str | None] = mapped_column(Text)
    enrollment_id: Mapped[str | None] = mapped_column(ID, ForeignKey("enrollments.id"), index=True)
    author_id: Mapped[str | None] = mapped_column(ID, _member_fk())
    start_on: Mapped[date | None]
    end_on: Mapped[date | None]
    problems: Mapped[list[Any]]


def _plan_fk() -> ForeignKey:
    return ForeignKey("care_plans.id", ondelete="CASCADE")


def _listed_fk(target: str) -> ForeignKey:
    # Checked at commit: see the module docstring. Deleting a row a plan still lists fails, as
    # for every other reference, rather than silently changing the plan.
    return ForeignKey(target, deferrable=True, initially="DEFERRED")


class CarePlanGoalRow(Base):
    __tablename__ = "care_plan_goals"

    care_plan_id: Mapped[str] = mapped_column(ID, _plan_fk(), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    goal_id: Mapped[str] = mapped_column(ID, _listed_fk("goals.id"), index=True)


class CarePlanTaskRow(Base):
    __tablename__ = "care_plan_tasks"

    care_plan_id: Mapped[str] = mapped_column(ID, _plan_fk(), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    care_task_id: Mapped[str] = mapped_column(ID, _listed_fk("care_tasks.id"), index=True)


class CarePlanReferralRow(Base):
    __tablename__ = "care_plan_referrals"

    care_plan_id: Mapped[str] = mapped_column(ID, _plan_fk(), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_id: Mapped[str] = mapped_column(ID, _listed_fk("referrals.id"), index=True)


class CarePlanContributorRow(Base):
    __tablename__ = "care_plan_contributors"

    care_plan_id: Mapped[str] = mapped_column(ID, _plan_fk(), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[str] = mapped_column(ID, _listed_fk("care_team_members.id"), index=True)


class GoalRow(Base):
    __tablename__ = "goals"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    lifecycle_status: Mapped[str] = mapped_column(ENUM)
    achievement_status: Mapped[str | None] = mapped_column(ENUM)
    description_code: Mapped[dict[str, Any] | None]
    start_on: Mapped[date | None]
    target: Mapped[dict[str, Any] | None]
    # A care team member id or "patient", hence no foreign key.
    expressed_by: Mapped[str | None] = mapped_column(ID)
    addresses: Mapped[list[Any]]
    # Our health concerns the goal addresses (ids, no foreign key: JSON). Null on rows
    # written before migration 0011: none.
    concern_ids: Mapped[list[Any] | None]


class CareTaskRow(Base):
    __tablename__ = "care_tasks"
    __table_args__ = (
        CheckConstraint(
            "due_end IS NULL OR due_start IS NULL OR due_end >= due_start", name="due_period"
        ),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # Tasks read from other systems need not be about a patient.
    patient_id: Mapped[str | None] = mapped_column(ID, ForeignKey("patient_links.id"), index=True)
    kind: Mapped[str | None] = mapped_column(ENUM)
    status: Mapped[str] = mapped_column(ENUM)
    authored_at: Mapped[datetime | None]
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str | None] = mapped_column(ENUM)  # unstated means routine
    owner_id: Mapped[str | None] = mapped_column(ID, _member_fk(), index=True)
    requester_id: Mapped[str | None] = mapped_column(ID, _member_fk())
    due_start: Mapped[date | None]
    due_end: Mapped[date | None]
    status_reason: Mapped[str | None] = mapped_column(Text)
    care_plan_id: Mapped[str | None] = mapped_column(ID, ForeignKey("care_plans.id"), index=True)


class TimeEntryRow(Base):
    __tablename__ = "time_entries"
    __table_args__ = (
        CheckConstraint("minutes IS NULL OR minutes >= 0", name="minutes_not_negative"),
        CheckConstraint(
            "ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at", name="period"
        ),
        # The billing roll-up: one staff member's or one patient's minutes in a month.
        Index("ix_time_entries_staff_id_started_at", "staff_id", "started_at"),
        Index("ix_time_entries_patient_id_started_at", "patient_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # Entries read from elsewhere may lack any of these; ours always carry them.
    patient_id: Mapped[str | None] = mapped_column(ID, ForeignKey("patient_links.id"))
    enrollment_id: Mapped[str | None] = mapped_column(ID, ForeignKey("enrollments.id"), index=True)
    program: Mapped[str | None] = mapped_column(ENUM)
    staff_id: Mapped[str | None] = mapped_column(ID, _member_fk())
    staff_role: Mapped[str | None] = mapped_column(ENUM)
    activity: Mapped[str | None] = mapped_column(ENUM)
    mode: Mapped[str | None] = mapped_column(ENUM)
    status: Mapped[str] = mapped_column(ENUM)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    minutes: Mapped[int | None] = mapped_column(Integer)
    interactive: Mapped[bool | None] = mapped_column(Boolean)
    notes: Mapped[str | None] = mapped_column(Text)


class ReferralRow(Base):
    __tablename__ = "referrals"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str | None] = mapped_column(ID, ForeignKey("patient_links.id"), index=True)
    kind: Mapped[str | None] = mapped_column(ENUM)
    status: Mapped[str] = mapped_column(ENUM)
    service: Mapped[dict[str, Any] | None]
    categories: Mapped[list[Any]]
    authored_at: Mapped[datetime | None]
    requester_id: Mapped[str | None] = mapped_column(ID, _member_fk())
    reason: Mapped[str | None] = mapped_column(Text)
    reason_code: Mapped[dict[str, Any] | None]
    priority: Mapped[str | None] = mapped_column(ENUM)  # unstated means routine
    performer_reference: Mapped[str | None] = mapped_column(REFERENCE)
    performer_display: Mapped[str | None] = mapped_column(String(255))
    goal_id: Mapped[str | None] = mapped_column(ID, ForeignKey("goals.id"))
    consent_id: Mapped[str | None] = mapped_column(ID, ForeignKey("program_consents.id"))
    care_plan_id: Mapped[str | None] = mapped_column(ID, ForeignKey("care_plans.id"), index=True)
    task_status: Mapped[str] = mapped_column(ENUM)
    task_status_reason: Mapped[str | None] = mapped_column(Text)
    task_owner_reference: Mapped[str | None] = mapped_column(REFERENCE)
    outcomes: Mapped[list[Any]]
    outcome_references: Mapped[list[Any]]


class FhirLinkRow(Base):
    __tablename__ = "fhir_links"
    __table_args__ = (
        UniqueConstraint("entity_kind", "local_id", "resource_type"),
        # Pulling a change from the server starts from its resource id.
        UniqueConstraint("resource_type", "server_id"),
    )

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    entity_kind: Mapped[str] = mapped_column(ENUM)
    local_id: Mapped[str] = mapped_column(ID)
    resource_type: Mapped[str] = mapped_column(String(64))
    server_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[str | None] = mapped_column(String(64))
    etag: Mapped[str | None] = mapped_column(String(128))
    content_hash: Mapped[str | None] = mapped_column(String(128))
    server_json: Mapped[dict[str, Any] | None]
    synced_at: Mapped[datetime]


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("operation IN ('upsert', 'delete')", name="operation"),
        CheckConstraint("state IN ('pending', 'in_flight', 'done', 'dead')", name="state"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
        # Changes to one record before it is pushed coalesce into a single pending entry. An
        # in-flight push may have read older data, so a change made meanwhile gets its own.
        Index(
            "uq_outbox_pending_target",
            "entity_kind",
            "local_id",
            "resource_type",
            unique=True,
            sqlite_where=text(PENDING_ONLY),
            postgresql_where=text(PENDING_ONLY),
        ),
    )

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    entity_kind: Mapped[str] = mapped_column(ENUM)
    local_id: Mapped[str] = mapped_column(ID)
    resource_type: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_outcome: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


metadata = Base.metadata


# -- Workflow layer (the REST API): audit trail, idempotency records, API keys, running timers.


class AuditEventRow(Base):
    """Who changed which record when, with the record as JSON before and after."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity_kind_local_id", "entity_kind", "local_id"),)

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(ENUM)
    entity_kind: Mapped[str] = mapped_column(ENUM)
    local_id: Mapped[str] = mapped_column(ID)
    before_json: Mapped[dict[str, Any] | None]
    after_json: Mapped[dict[str, Any] | None]


class IdempotencyRecordRow(Base):
    """The response a POST gave, replayed when the same client retries with the same key."""

    __tablename__ = "idempotency_records"
    # Keys are chosen by clients, so they are only unique per client.
    __table_args__ = (UniqueConstraint("principal", "idempotency_key"),)

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    principal: Mapped[str] = mapped_column(String(255))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    """A machine client's key: only its SHA-256 is stored, never the key itself."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(ENUM)
    team: Mapped[str | None] = mapped_column(String(64))
    staff_id: Mapped[str | None] = mapped_column(ID, _member_fk())  # whose time it records
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class RunningTimerRow(Base):
    """The timer a staff member has running; the primary key allows one per staff member."""

    __tablename__ = "running_timers"

    staff_id: Mapped[str] = mapped_column(ID, _member_fk(), primary_key=True)
    time_entry_id: Mapped[str] = mapped_column(ID, ForeignKey("time_entries.id"), unique=True)
    started_at: Mapped[datetime]


# -- sync: conflicts and pull cursors (migration 0002) ------------------------------------

OPEN_ONLY = "state = 'open'"


class SyncConflictRow(Base):
    """A disagreement between our record and the server copy, kept until a person or a rule
    resolves it. ``local`` and ``remote`` are both resources as JSON, so nothing is lost."""

    __tablename__ = "sync_conflicts"
    __table_args__ = (
        CheckConstraint("state IN ('open', 'resolved')", name="state"),
        CheckConstraint(
            "resolution IS NULL OR resolution IN ('keep-local', 'take-remote', 'manual')",
            name="resolution",
        ),
        CheckConstraint(
            "(state = 'open' AND resolution IS NULL AND resolved_by IS NULL"
            " AND resolved_at IS NULL) OR (state = 'resolved' AND resolution IS NOT NULL"
            " AND resolved_by IS NOT NULL AND resolved_at IS NOT NULL)",
            name="resolved_together",
        ),
        Index("ix_sync_conflicts_entity_kind_local_id", "entity_kind", "local_id"),
        # One open conflict per server resource: a later detection refreshes it.
        Index(
            "uq_sync_conflicts_open_target",
            "entity_kind",
            "local_id",
            "resource_type",
            unique=True,
            sqlite_where=text(OPEN_ONLY),
            postgresql_where=text(OPEN_ONLY),
        ),
    )

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    entity_kind: Mapped[str] = mapped_column(ENUM)
    local_id: Mapped[str] = mapped_column(ID)
    resource_type: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    fields: Mapped[list[Any]]
    local: Mapped[dict[str, Any]]
    remote: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    detected_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class SyncCursorRow(Base):
    """How far a pull got: e.g. the last ``_lastUpdated`` seen per server and resource type."""

    __tablename__ = "sync_cursors"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class ServerProfileRow(Base):
    """What the push learned about one FHIR server (by base URL), kept across runs (0005).

    ``max_transaction_entries``: the largest transaction the server accepted after refusing a
    bigger one for its size; None while it has refused none.
    """

    __tablename__ = "server_profiles"

    base_url: Mapped[str] = mapped_column(String(512), primary_key=True)
    max_transaction_entries: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]


# -- billing: monthly charges (migration 0004) --------------------------------------------


class ChargeRow(Base):
    """One code earned by one patient in one calendar month (a ChargeItem on the server).

    The counted time entries are a JSON list, like an enrollment's conditions: the charge
    records what was counted when it was made, and a time entry deleted later must not
    silently change or block it.
    """

    __tablename__ = "charges"
    __table_args__ = (
        CheckConstraint("units > 0", name="units_positive"),
        CheckConstraint("month_end >= month_start", name="month"),
        # Re-running a month updates its charges; this keeps a second id for one code out.
        UniqueConstraint("patient_id", "month_start", "code_system", "code"),
        Index("ix_charges_month_start_patient_id", "month_start", "patient_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"))
    code_system: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(16))
    units: Mapped[int] = mapped_column(Integer)
    month_start: Mapped[date]
    month_end: Mapped[date]
    status: Mapped[str] = mapped_column(ENUM)
    practitioner_id: Mapped[str | None] = mapped_column(ID, _member_fk())
    time_entry_ids: Mapped[list[Any]]


# -- monitoring: RPM device readings (migration 0007) --------------------------------------

# Enough for any vital sign or lab value, exact on PostgreSQL (SQLite keeps it as a REAL).
READING_VALUE = Numeric(18, 6)
# The readings from a device (not typed in), as ``manual.is_(False)`` renders on each backend.
DEVICE_READINGS_SQLITE = "manual IS 0"
DEVICE_READINGS_POSTGRESQL = "manual IS false"


class DeviceReadingRow(Base):
    """One device reading (an Observation), keyed by the identifier it has on its source.

    Receiving the same reading again updates this row (the unique source identifier makes the
    insert an upsert); ``day`` is fixed at ingest in the practice time zone, and device days
    are counted per patient and day over the readings from a device, hence the partial index
    (its condition spelled as the device-day queries spell ``manual.is_(False)``, so both
    backends use it, index-only) beside the one on every reading (a patient's readings).
    """

    __tablename__ = "device_readings"
    __table_args__ = (
        UniqueConstraint("source_system", "source_value"),
        Index("ix_device_readings_patient_id_day", "patient_id", "day"),
        Index(
            "ix_device_readings_device_days",
            "patient_id",
            "day",
            "manual",  # so SQLite (3.40) also reads it as a covering index
            sqlite_where=text(DEVICE_READINGS_SQLITE),
            postgresql_where=text(DEVICE_READINGS_POSTGRESQL),
        ),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"))
    code: Mapped[str] = mapped_column(String(32))
    effective_at: Mapped[datetime]
    day: Mapped[date]
    value: Mapped[Decimal | None] = mapped_column(READING_VALUE)
    second_value: Mapped[Decimal | None] = mapped_column(READING_VALUE)
    unit: Mapped[str | None] = mapped_column(String(32))
    device: Mapped[str | None] = mapped_column(REFERENCE)
    manual: Mapped[bool] = mapped_column(Boolean)
    source_system: Mapped[str] = mapped_column(String(255))
    source_value: Mapped[str] = mapped_column(String(255))


# -- transitional care: TCM periods and their contacts (migration 0008) ------------------------


class TcmPeriodRow(Base):
    """The 30 days after one qualifying discharge; one per discharge Encounter (the unique
    ``discharge_key`` makes opening a period for the same discharge twice find the first)."""

    __tablename__ = "tcm_periods"
    __table_args__ = (
        UniqueConstraint("discharge_key"),
        Index("ix_tcm_periods_patient_id_discharged_on", "patient_id", "discharged_on"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"))
    discharge_key: Mapped[str] = mapped_column(String(255))
    discharged_on: Mapped[date]
    status: Mapped[str] = mapped_column(ENUM)
    setting: Mapped[str | None] = mapped_column(ENUM)
    disposition: Mapped[str | None] = mapped_column(String(64))
    complexity: Mapped[str | None] = mapped_column(ENUM)
    complexity_recorded_by: Mapped[str | None] = mapped_column(ID, _member_fk())
    practitioner_id: Mapped[str | None] = mapped_column(ID, _member_fk())
    contact_task_id: Mapped[str | None] = mapped_column(ID, ForeignKey("care_tasks.id"))
    visit_task_id: Mapped[str | None] = mapped_column(ID, ForeignKey("care_tasks.id"))
    opened_at: Mapped[datetime | None]


class TcmContactRow(Base):
    """A contact, a documented unsuccessful attempt or the face-to-face visit of a period."""

    __tablename__ = "tcm_contacts"
    __table_args__ = (
        CheckConstraint("minutes IS NULL OR minutes >= 0", name="minutes_not_negative"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    period_id: Mapped[str] = mapped_column(ID, ForeignKey("tcm_periods.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"), index=True)
    kind: Mapped[str] = mapped_column(ENUM)
    occurred_on: Mapped[date]
    occurred_at: Mapped[datetime | None]
    staff_id: Mapped[str | None] = mapped_column(ID, _member_fk())
    mode: Mapped[str | None] = mapped_column(ENUM)
    minutes: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)


# -- assessments and screening (migration 0010) --------------------------------------------


class AssessmentRow(Base):
    """One completed instrument (a QuestionnaireResponse): the answers as given (JSON: read
    whole, never queried inside) and the score they earned; history is read per patient and
    questionnaire (instrument) in time order, hence the index."""

    __tablename__ = "assessments"
    __table_args__ = (
        Index(
            "ix_assessments_patient_id_questionnaire_authored_at",
            "patient_id",
            "questionnaire",
            "authored_at",
        ),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"))
    questionnaire: Mapped[str] = mapped_column(REFERENCE)
    status: Mapped[str] = mapped_column(ENUM)
    authored_at: Mapped[datetime]
    author_id: Mapped[str | None] = mapped_column(ID, _member_fk())
    answers: Mapped[list[Any]]
    total: Mapped[int | None] = mapped_column(Integer)
    band: Mapped[str | None] = mapped_column(String(64))
    positive_domains: Mapped[list[Any]]


class ScreeningObservationRow(Base):
    """One answer or total of an assessment (an Observation)."""

    __tablename__ = "screening_observations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"), index=True)
    assessment_id: Mapped[str | None] = mapped_column(ID, ForeignKey("assessments.id"), index=True)
    status: Mapped[str] = mapped_column(ENUM)
    code: Mapped[dict[str, Any]]
    categories: Mapped[list[Any]]
    value_code: Mapped[dict[str, Any] | None]
    value_integer: Mapped[int | None] = mapped_column(Integer)
    effective_at: Mapped[datetime]
    performer_id: Mapped[str | None] = mapped_column(ID, _member_fk())


class HealthConcernRow(Base):
    """A need found by screening (a Condition); its evidence is a JSON list of observation
    ids, kept as recorded."""

    __tablename__ = "health_concerns"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"), index=True)
    code: Mapped[dict[str, Any]]
    clinical_status: Mapped[str] = mapped_column(ENUM)
    categories: Mapped[list[Any]]
    recorded_on: Mapped[date | None]
    recorder_id: Mapped[str | None] = mapped_column(ID, _member_fk())
    evidence_ids: Mapped[list[Any]]


class QmbPeriodRow(Base):
    """Days a patient is a Qualified Medicare Beneficiary (it fixes the APCM tier)."""

    __tablename__ = "qmb_periods"
    __table_args__ = (CheckConstraint("end_on IS NULL OR end_on >= start_on", name="period"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"), index=True)
    start_on: Mapped[date]
    end_on: Mapped[date | None]


class ConditionPeriodRow(Base):
    """Days a chronic condition was on an enrollment (the APCM tier's history)."""

    __tablename__ = "condition_periods"
    __table_args__ = (CheckConstraint("end_on IS NULL OR end_on >= start_on", name="period"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    enrollment_id: Mapped[str] = mapped_column(ID, ForeignKey("enrollments.id"), index=True)
    condition: Mapped[str] = mapped_column(REFERENCE)
    start_on: Mapped[date]
    end_on: Mapped[date | None]


class PatientCareTeamRow(Base):
    """A patient's care team (a CareTeam); one per patient."""

    __tablename__ = "patient_care_teams"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ID, ForeignKey("patient_links.id"), unique=True)
    status: Mapped[str] = mapped_column(ENUM)
    name: Mapped[str | None] = mapped_column(String(200))


class PatientCareTeamParticipantRow(Base):
    """One participant of a patient's care team, in order: our staff member (``member_id``) or
    a reference on the EHR (``external_reference``), never both."""

    __tablename__ = "patient_care_team_participants"
    __table_args__ = (
        CheckConstraint("(member_id IS NULL) <> (external_reference IS NULL)", name="one_member"),
        CheckConstraint("end_on IS NULL OR start_on IS NULL OR end_on >= start_on", name="period"),
    )

    care_team_id: Mapped[str] = mapped_column(
        ID, ForeignKey("patient_care_teams.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(ENUM)
    member_id: Mapped[str | None] = mapped_column(ID, _member_fk(), index=True)
    external_reference: Mapped[str | None] = mapped_column(REFERENCE)
    start_on: Mapped[date | None]
    end_on: Mapped[date | None]
