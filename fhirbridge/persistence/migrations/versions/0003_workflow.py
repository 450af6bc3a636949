"""Workflow layer: audit trail, idempotency records, API keys and running timers.

Revision ID: 0003
Revises: 0001
Create Date: 2026-01-03

A branch from the initial schema (see ``migrate``: "heads"). Types are spelled out here, as in
0001, so this revision keeps describing the schema it created.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("workflow",)
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("occurred_at", TIMESTAMPTZ, nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("entity_kind", sa.String(length=32), nullable=False),
        sa.Column("local_id", sa.String(length=64), nullable=False),
        sa.Column("before_json", JSON_DOCUMENT, nullable=True),
        sa.Column("after_json", JSON_DOCUMENT, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        "ix_audit_events_entity_kind_local_id",
        "audit_events",
        ["entity_kind", "local_id"],
        unique=False,
    )
    op.create_table(
        "idempotency_records",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", JSON_DOCUMENT, nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint(
            "principal",
            "idempotency_key",
            name=op.f("uq_idempotency_records_principal_idempotency_key"),
        ),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("revoked_at", TIMESTAMPTZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_table(
        "running_timers",
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("time_entry_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", TIMESTAMPTZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["care_team_members.id"],
            name=op.f("fk_running_timers_staff_id"),
        ),
        sa.ForeignKeyConstraint(
            ["time_entry_id"],
            ["time_entries.id"],
            name=op.f("fk_running_timers_time_entry_id"),
        ),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_running_timers")),
        sa.UniqueConstraint("time_entry_id", name=op.f("uq_running_timers_time_entry_id")),
    )


def downgrade() -> None:
    op.drop_table("running_timers")
    op.drop_table("api_keys")
    op.drop_table("idempotency_records")
    op.drop_index("ix_audit_events_entity_kind_local_id", table_name="audit_events")
    op.drop_table("audit_events")
