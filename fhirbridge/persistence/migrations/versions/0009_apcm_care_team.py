"""APCM tier facts (QMB periods, condition periods) and patients' care teams.

Revision ID: 0009
Revises: 0001
Create Date: 2026-12-01

A branch from the initial schema (see ``migrate``: "heads"). Types are spelled out here, as in
0001, so this revision keeps describing the schema it created. Only 0001 tables are referenced
(patient_links, enrollments, care_team_members), so no other branch is needed first.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("care_team",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "qmb_periods",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "end_on IS NULL OR end_on >= start_on", name=op.f("ck_qmb_periods_period")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_qmb_periods_patient_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qmb_periods")),
    )
    op.create_index(op.f("ix_qmb_periods_patient_id"), "qmb_periods", ["patient_id"], unique=False)
    op.create_table(
        "condition_periods",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("enrollment_id", sa.String(length=64), nullable=False),
        sa.Column("condition", sa.String(length=255), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "end_on IS NULL OR end_on >= start_on", name=op.f("ck_condition_periods_period")
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name=op.f("fk_condition_periods_enrollment_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_condition_periods")),
    )
    op.create_index(
        op.f("ix_condition_periods_enrollment_id"),
        "condition_periods",
        ["enrollment_id"],
        unique=False,
    )
    op.create_table(
        "patient_care_teams",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_patient_care_teams_patient_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_care_teams")),
        sa.UniqueConstraint("patient_id", name=op.f("uq_patient_care_teams_patient_id")),
    )
    op.create_table(
        "patient_care_team_participants",
        sa.Column("care_team_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=True),
        sa.Column("external_reference", sa.String(length=255), nullable=True),
        sa.Column("start_on", sa.Date(), nullable=True),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "(member_id IS NULL) <> (external_reference IS NULL)",
            name=op.f("ck_patient_care_team_participants_one_member"),
        ),
        sa.CheckConstraint(
            "end_on IS NULL OR start_on IS NULL OR end_on >= start_on",
            name=op.f("ck_patient_care_team_participants_period"),
        ),
        sa.ForeignKeyConstraint(
            ["care_team_id"],
            ["patient_care_teams.id"],
            name=op.f("fk_patient_care_team_participants_care_team_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["care_team_members.id"],
            name=op.f("fk_patient_care_team_participants_member_id"),
        ),
        sa.PrimaryKeyConstraint(
            "care_team_id", "position", name=op.f("pk_patient_care_team_participants")
        ),
    )
    op.create_index(
        op.f("ix_patient_care_team_participants_member_id"),
        "patient_care_team_participants",
        ["member_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_patient_care_team_participants_member_id"),
        table_name="patient_care_team_participants",
    )
    op.drop_table("patient_care_team_participants")
    op.drop_table("patient_care_teams")
    op.drop_index(op.f("ix_condition_periods_enrollment_id"), table_name="condition_periods")
    op.drop_table("condition_periods")
    op.drop_index(op.f("ix_qmb_periods_patient_id"), table_name="qmb_periods")
    op.drop_table("qmb_periods")
