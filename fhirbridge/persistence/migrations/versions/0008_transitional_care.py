"""Transitional care: TCM periods (one per discharge) and their contacts, attempts and visits.

Revision ID: 0008
Revises: 0001
Create Date: 2026-12-01

A branch from the initial schema (see ``migrate``: "heads"). Types are spelled out here, as in
0001, so this revision keeps describing the schema it created. Only 0001 tables are referenced
(patient_links, care_team_members, care_tasks), so no other branch is needed first.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("transitional_care",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tcm_periods",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("discharge_key", sa.String(length=255), nullable=False),
        sa.Column("discharged_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("setting", sa.String(length=32), nullable=True),
        sa.Column("disposition", sa.String(length=64), nullable=True),
        sa.Column("complexity", sa.String(length=32), nullable=True),
        sa.Column("complexity_recorded_by", sa.String(length=64), nullable=True),
        sa.Column("practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("contact_task_id", sa.String(length=64), nullable=True),
        sa.Column("visit_task_id", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_tcm_periods_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["complexity_recorded_by"],
            ["care_team_members.id"],
            name=op.f("fk_tcm_periods_complexity_recorded_by"),
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["care_team_members.id"],
            name=op.f("fk_tcm_periods_practitioner_id"),
        ),
        sa.ForeignKeyConstraint(
            ["contact_task_id"], ["care_tasks.id"], name=op.f("fk_tcm_periods_contact_task_id")
        ),
        sa.ForeignKeyConstraint(
            ["visit_task_id"], ["care_tasks.id"], name=op.f("fk_tcm_periods_visit_task_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tcm_periods")),
        sa.UniqueConstraint("discharge_key", name=op.f("uq_tcm_periods_discharge_key")),
    )
    op.create_index(
        "ix_tcm_periods_patient_id_discharged_on",
        "tcm_periods",
        ["patient_id", "discharged_on"],
        unique=False,
    )
    op.create_table(
        "tcm_contacts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("period_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("staff_id", sa.String(length=64), nullable=True),
        sa.Column("mode", sa.String(length=32), nullable=True),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "minutes IS NULL OR minutes >= 0", name=op.f("ck_tcm_contacts_minutes_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["period_id"], ["tcm_periods.id"], name=op.f("fk_tcm_contacts_period_id")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_tcm_contacts_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["care_team_members.id"], name=op.f("fk_tcm_contacts_staff_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tcm_contacts")),
    )
    op.create_index(op.f("ix_tcm_contacts_period_id"), "tcm_contacts", ["period_id"], unique=False)
    op.create_index(
        op.f("ix_tcm_contacts_patient_id"), "tcm_contacts", ["patient_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tcm_contacts_patient_id"), table_name="tcm_contacts")
    op.drop_index(op.f("ix_tcm_contacts_period_id"), table_name="tcm_contacts")
    op.drop_table("tcm_contacts")
    op.drop_index("ix_tcm_periods_patient_id_discharged_on", table_name="tcm_periods")
    op.drop_table("tcm_periods")
