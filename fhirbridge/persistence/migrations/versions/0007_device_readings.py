"""Monitoring: RPM device readings (Observations from devices, keyed by their source id).

Revision ID: 0007
Revises: 0001
Create Date: 2026-12-01

A branch from the initial schema (see ``migrate``: "heads"). Types are spelled out here, as in
0001, so this revision keeps describing the schema it created.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("monitoring",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_readings",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("second_value", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("device", sa.String(length=255), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("source_system", sa.String(length=255), nullable=False),
        sa.Column("source_value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_device_readings_patient_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_readings")),
        sa.UniqueConstraint(
            "source_system",
            "source_value",
            name=op.f("uq_device_readings_source_system_source_value"),
        ),
    )
    op.create_index(
        "ix_device_readings_patient_id_day",
        "device_readings",
        ["patient_id", "day"],
        unique=False,
    )
    # Device days count the readings from a device: index-only, spelled as the queries spell
    # ``manual IS false`` on each backend (``manual`` indexed too: SQLite then covers it).
    op.create_index(
        "ix_device_readings_device_days",
        "device_readings",
        ["patient_id", "day", "manual"],
        unique=False,
        sqlite_where=sa.text("manual IS 0"),
        postgresql_where=sa.text("manual IS false"),
    )


def downgrade() -> None:
    op.drop_index("ix_device_readings_device_days", table_name="device_readings")
    op.drop_index("ix_device_readings_patient_id_day", table_name="device_readings")
    op.drop_table("device_readings")
