"""Initial schema: the care-management tables, FHIR links and the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Types are spelled out here rather than imported from ``tables`` so that this revision keeps
describing the schema it created even after the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "care_team_members",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("practitioner_reference", sa.String(length=255), nullable=True),
        sa.Column("npi", sa.String(length=10), nullable=True),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_team_members")),
    )
    op.create_index(op.f("ix_care_team_members_team"), "care_team_members", ["team"], unique=False)
    op.create_table(
        "fhir_links",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("entity_kind", sa.String(length=32), nullable=False),
        sa.Column("local_id", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("server_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=True),
        sa.Column("etag", sa.String(length=128), nullable=True),
        sa.Column("content_hash", sa.String(length=128), nullable=True),
        sa.Column("server_json", JSON_DOCUMENT, nullable=True),
        sa.Column("synced_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_links")),
        sa.UniqueConstraint(
            "entity_kind",
            "local_id",
            "resource_type",
            name=op.f("uq_fhir_links_entity_kind_local_id_resource_type"),
        ),
        sa.UniqueConstraint(
            "resource_type", "server_id", name=op.f("uq_fhir_links_resource_type_server_id")
        ),
    )
    op.create_table(
        "outbox",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("entity_kind", sa.String(length=32), nullable=False),
        sa.Column("local_id", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMPTZ, nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_at", TIMESTAMPTZ, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_outcome", JSON_DOCUMENT, nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.CheckConstraint("operation IN ('upsert', 'delete')", name=op.f("ck_outbox_operation")),
        sa.CheckConstraint(
            "state IN ('pending', 'in_flight', 'done', 'dead')", name=op.f("ck_outbox_state")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_outbox_attempts_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        "ix_outbox_state_next_attempt_at", "outbox", ["state", "next_attempt_at"], unique=False
    )
    op.create_index(
        "uq_outbox_pending_target",
        "outbox",
        ["entity_kind", "local_id", "resource_type"],
        unique=True,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "patient_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("ehr_reference", sa.String(length=255), nullable=False),
        sa.Column("mrn_system", sa.String(length=255), nullable=True),
        sa.Column("mrn_value", sa.String(length=64), nullable=True),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_links")),
        sa.UniqueConstraint("ehr_reference", name=op.f("uq_patient_links_ehr_reference")),
    )
    op.create_index(op.f("ix_patient_links_team"), "patient_links", ["team"], unique=False)
    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("program", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.Column("conditions", JSON_DOCUMENT, nullable=False),
        sa.Column("risk_level", sa.String(length=32), nullable=True),
        sa.Column("care_manager_id", sa.String(length=64), nullable=True),
        sa.Column("billing_practitioner_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "end_on IS NULL OR end_on >= start_on", name=op.f("ck_enrollments_period")
        ),
        sa.ForeignKeyConstraint(
            ["billing_practitioner_id"],
            ["care_team_members.id"],
            name=op.f("fk_enrollments_billing_practitioner_id"),
        ),
        sa.ForeignKeyConstraint(
            ["care_manager_id"],
            ["care_team_members.id"],
            name=op.f("fk_enrollments_care_manager_id"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_enrollments_patient_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
    )
    op.create_index(
        op.f("ix_enrollments_care_manager_id"), "enrollments", ["care_manager_id"], unique=False
    )
    op.create_index(op.f("ix_enrollments_patient_id"), "enrollments", ["patient_id"], unique=False)
    op.create_table(
        "goals",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("lifecycle_status", sa.String(length=32), nullable=False),
        sa.Column("achievement_status", sa.String(length=32), nullable=True),
        sa.Column("description_code", JSON_DOCUMENT, nullable=True),
        sa.Column("start_on", sa.Date(), nullable=True),
        sa.Column("target", JSON_DOCUMENT, nullable=True),
        sa.Column("expressed_by", sa.String(length=64), nullable=True),
        sa.Column("addresses", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_goals_patient_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goals")),
    )
    op.create_index(op.f("ix_goals_patient_id"), "goals", ["patient_id"], unique=False)
    op.create_table(
        "care_plans",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("enrollment_id", sa.String(length=64), nullable=True),
        sa.Column("author_id", sa.String(length=64), nullable=True),
        sa.Column("start_on", sa.Date(), nullable=True),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.Column("problems", JSON_DOCUMENT, nullable=False),
        sa.CheckConstraint(
            "end_on IS NULL OR start_on IS NULL OR end_on >= start_on",
            name=op.f("ck_care_plans_period"),
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["care_team_members.id"], name=op.f("fk_care_plans_author_id")
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name=op.f("fk_care_plans_enrollment_id")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_care_plans_patient_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_plans")),
    )
    op.create_index(
        op.f("ix_care_plans_enrollment_id"), "care_plans", ["enrollment_id"], unique=False
    )
    op.create_index(op.f("ix_care_plans_patient_id"), "care_plans", ["patient_id"], unique=False)
    op.create_table(
        "program_consents",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("enrollment_id", sa.String(length=64), nullable=False),
        sa.Column("program", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("recorded_by_id", sa.String(length=64), nullable=False),
        sa.Column("scope", JSON_DOCUMENT, nullable=True),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name=op.f("fk_program_consents_enrollment_id")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_program_consents_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["care_team_members.id"],
            name=op.f("fk_program_consents_recorded_by_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_consents")),
    )
    op.create_index(
        op.f("ix_program_consents_enrollment_id"),
        "program_consents",
        ["enrollment_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_program_consents_patient_id"), "program_consents", ["patient_id"], unique=False
    )
    op.create_table(
        "time_entries",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("enrollment_id", sa.String(length=64), nullable=True),
        sa.Column("program", sa.String(length=32), nullable=True),
        sa.Column("staff_id", sa.String(length=64), nullable=True),
        sa.Column("staff_role", sa.String(length=32), nullable=True),
        sa.Column("activity", sa.String(length=32), nullable=True),
        sa.Column("mode", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("started_at", TIMESTAMPTZ, nullable=True),
        sa.Column("ended_at", TIMESTAMPTZ, nullable=True),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("interactive", sa.Boolean(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at",
            name=op.f("ck_time_entries_period"),
        ),
        sa.CheckConstraint(
            "minutes IS NULL OR minutes >= 0", name=op.f("ck_time_entries_minutes_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name=op.f("fk_time_entries_enrollment_id")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_time_entries_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["care_team_members.id"], name=op.f("fk_time_entries_staff_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_entries")),
    )
    op.create_index(
        op.f("ix_time_entries_enrollment_id"), "time_entries", ["enrollment_id"], unique=False
    )
    op.create_index(
        "ix_time_entries_patient_id_started_at",
        "time_entries",
        ["patient_id", "started_at"],
        unique=False,
    )
    op.create_index(
        "ix_time_entries_staff_id_started_at",
        "time_entries",
        ["staff_id", "started_at"],
        unique=False,
    )
    op.create_table(
        "care_plan_contributors",
        sa.Column("care_plan_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["care_plan_id"],
            ["care_plans.id"],
            name=op.f("fk_care_plan_contributors_care_plan_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["care_team_members.id"],
            name=op.f("fk_care_plan_contributors_member_id"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("care_plan_id", "position", name=op.f("pk_care_plan_contributors")),
    )
    op.create_index(
        op.f("ix_care_plan_contributors_member_id"),
        "care_plan_contributors",
        ["member_id"],
        unique=False,
    )
    op.create_table(
        "care_plan_goals",
        sa.Column("care_plan_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["care_plan_id"],
            ["care_plans.id"],
            name=op.f("fk_care_plan_goals_care_plan_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["goal_id"],
            ["goals.id"],
            name=op.f("fk_care_plan_goals_goal_id"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("care_plan_id", "position", name=op.f("pk_care_plan_goals")),
    )
    op.create_index(
        op.f("ix_care_plan_goals_goal_id"), "care_plan_goals", ["goal_id"], unique=False
    )
    op.create_table(
        "care_tasks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("authored_at", TIMESTAMPTZ, nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.String(length=32), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("requester_id", sa.String(length=64), nullable=True),
        sa.Column("due_start", sa.Date(), nullable=True),
        sa.Column("due_end", sa.Date(), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("care_plan_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "due_end IS NULL OR due_start IS NULL OR due_end >= due_start",
            name=op.f("ck_care_tasks_due_period"),
        ),
        sa.ForeignKeyConstraint(
            ["care_plan_id"], ["care_plans.id"], name=op.f("fk_care_tasks_care_plan_id")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["care_team_members.id"], name=op.f("fk_care_tasks_owner_id")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_care_tasks_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"], ["care_team_members.id"], name=op.f("fk_care_tasks_requester_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_tasks")),
    )
    op.create_index(
        op.f("ix_care_tasks_care_plan_id"), "care_tasks", ["care_plan_id"], unique=False
    )
    op.create_index(op.f("ix_care_tasks_owner_id"), "care_tasks", ["owner_id"], unique=False)
    op.create_index(op.f("ix_care_tasks_patient_id"), "care_tasks", ["patient_id"], unique=False)
    op.create_table(
        "referrals",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("service", JSON_DOCUMENT, nullable=True),
        sa.Column("categories", JSON_DOCUMENT, nullable=False),
        sa.Column("authored_at", TIMESTAMPTZ, nullable=True),
        sa.Column("requester_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reason_code", JSON_DOCUMENT, nullable=True),
        sa.Column("priority", sa.String(length=32), nullable=True),
        sa.Column("performer_reference", sa.String(length=255), nullable=True),
        sa.Column("performer_display", sa.String(length=255), nullable=True),
        sa.Column("goal_id", sa.String(length=64), nullable=True),
        sa.Column("consent_id", sa.String(length=64), nullable=True),
        sa.Column("care_plan_id", sa.String(length=64), nullable=True),
        sa.Column("task_status", sa.String(length=32), nullable=False),
        sa.Column("task_status_reason", sa.Text(), nullable=True),
        sa.Column("task_owner_reference", sa.String(length=255), nullable=True),
        sa.Column("outcomes", JSON_DOCUMENT, nullable=False),
        sa.Column("outcome_references", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["care_plan_id"], ["care_plans.id"], name=op.f("fk_referrals_care_plan_id")
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["program_consents.id"], name=op.f("fk_referrals_consent_id")
        ),
        sa.ForeignKeyConstraint(["goal_id"], ["goals.id"], name=op.f("fk_referrals_goal_id")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_referrals_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"], ["care_team_members.id"], name=op.f("fk_referrals_requester_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
    )
    op.create_index(op.f("ix_referrals_care_plan_id"), "referrals", ["care_plan_id"], unique=False)
    op.create_index(op.f("ix_referrals_patient_id"), "referrals", ["patient_id"], unique=False)
    op.create_table(
        "care_plan_referrals",
        sa.Column("care_plan_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["care_plan_id"],
            ["care_plans.id"],
            name=op.f("fk_care_plan_referrals_care_plan_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_care_plan_referrals_referral_id"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("care_plan_id", "position", name=op.f("pk_care_plan_referrals")),
    )
    op.create_index(
        op.f("ix_care_plan_referrals_referral_id"),
        "care_plan_referrals",
        ["referral_id"],
        unique=False,
    )
    op.create_table(
        "care_plan_tasks",
        sa.Column("care_plan_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("care_task_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["care_plan_id"],
            ["care_plans.id"],
            name=op.f("fk_care_plan_tasks_care_plan_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["care_task_id"],
            ["care_tasks.id"],
            name=op.f("fk_care_plan_tasks_care_task_id"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("care_plan_id", "position", name=op.f("pk_care_plan_tasks")),
    )
    op.create_index(
        op.f("ix_care_plan_tasks_care_task_id"), "care_plan_tasks", ["care_task_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_care_plan_tasks_care_task_id"), table_name="care_plan_tasks")
    op.drop_table("care_plan_tasks")
    op.drop_index(op.f("ix_care_plan_referrals_referral_id"), table_name="care_plan_referrals")
    op.drop_table("care_plan_referrals")
    op.drop_index(op.f("ix_referrals_patient_id"), table_name="referrals")
    op.drop_index(op.f("ix_referrals_care_plan_id"), table_name="referrals")
    op.drop_table("referrals")
    op.drop_index(op.f("ix_care_tasks_patient_id"), table_name="care_tasks")
    op.drop_index(op.f("ix_care_tasks_owner_id"), table_name="care_tasks")
    op.drop_index(op.f("ix_care_tasks_care_plan_id"), table_name="care_tasks")
    op.drop_table("care_tasks")
    op.drop_index(op.f("ix_care_plan_goals_goal_id"), table_name="care_plan_goals")
    op.drop_table("care_plan_goals")
    op.drop_index(op.f("ix_care_plan_contributors_member_id"), table_name="care_plan_contributors")
    op.drop_table("care_plan_contributors")
    op.drop_index("ix_time_entries_staff_id_started_at", table_name="time_entries")
    op.drop_index("ix_time_entries_patient_id_started_at", table_name="time_entries")
    op.drop_index(op.f("ix_time_entries_enrollment_id"), table_name="time_entries")
    op.drop_table("time_entries")
    op.drop_index(op.f("ix_program_consents_patient_id"), table_name="program_consents")
    op.drop_index(op.f("ix_program_consents_enrollment_id"), table_name="program_consents")
    op.drop_table("program_consents")
    op.drop_index(op.f("ix_care_plans_patient_id"), table_name="care_plans")
    op.drop_index(op.f("ix_care_plans_enrollment_id"), table_name="care_plans")
    op.drop_table("care_plans")
    op.drop_index(op.f("ix_goals_patient_id"), table_name="goals")
    op.drop_table("goals")
    op.drop_index(op.f("ix_enrollments_patient_id"), table_name="enrollments")
    op.drop_index(op.f("ix_enrollments_care_manager_id"), table_name="enrollments")
    op.drop_table("enrollments")
    op.drop_index(op.f("ix_patient_links_team"), table_name="patient_links")
    op.drop_table("patient_links")
    op.drop_index(
        "uq_outbox_pending_target",
        table_name="outbox",
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_index("ix_outbox_state_next_attempt_at", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("fhir_links")
    op.drop_index(op.f("ix_care_team_members_team"), table_name="care_team_members")
    op.drop_table("care_team_members")
