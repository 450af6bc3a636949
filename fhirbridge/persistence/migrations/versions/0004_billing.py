"""Billing: monthly charges (one code per patient and calendar month, pushed as ChargeItem).

Revision ID: 0004
Revises: 0001
Create Date: 2026-01-04

A branch from the initial schema (see ``migrate``: "heads"). Types are spelled out here, as in
0001, so this revision keeps describing the schema it created.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("billing",)
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "charges",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("code_system", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("month_start", sa.Date(), nullable=False),
        sa.Column("month_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("time_entry_ids", JSON_DOCUMENT, nullable=False),
        sa.CheckConstraint("units > 0", name=op.f("ck_charges_units_positive")),
        sa.CheckConstraint("month_end >= month_start", name=op.f("ck_charges_month")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_charges_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["care_team_members.id"],
            name=op.f("fk_charges_practitioner_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charges")),
        sa.UniqueConstraint(
            "patient_id",
            "month_start",
            "code_system",
            "code",
            name=op.f("uq_charges_patient_id_month_start_code_system_code"),
        ),
    )
    op.create_index(
        "ix_charges_month_start_patient_id",
        "charges",
        ["month_start", "patient_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_charges_month_start_patient_id", table_name="charges")
    op.drop_table("charges")
