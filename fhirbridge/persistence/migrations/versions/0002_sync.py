"""Sync layer: conflicts kept for a person or a rule, and pull cursors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02

A branch from the initial schema (see ``migrate``: "heads"). Types are spelled out here, as in
0001, so this revision keeps describing the schema it created.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("sync",)
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN_ONLY = "state = 'open'"


def upgrade() -> None:
    op.create_table(
        "sync_conflicts",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("entity_kind", sa.String(length=32), nullable=False),
        sa.Column("local_id", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("fields", JSON_DOCUMENT, nullable=False),
        sa.Column("local", JSON_DOCUMENT, nullable=False),
        sa.Column("remote", JSON_DOCUMENT, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("detected_at", TIMESTAMPTZ, nullable=False),
        sa.Column("resolved_at", TIMESTAMPTZ, nullable=True),
        sa.CheckConstraint("state IN ('open', 'resolved')", name=op.f("ck_sync_conflicts_state")),
        sa.CheckConstraint(
            "resolution IS NULL OR resolution IN ('keep-local', 'take-remote', 'manual')",
            name=op.f("ck_sync_conflicts_resolution"),
        ),
        sa.CheckConstraint(
            "(state = 'open' AND resolution IS NULL AND resolved_by IS NULL"
            " AND resolved_at IS NULL) OR (state = 'resolved' AND resolution IS NOT NULL"
            " AND resolved_by IS NOT NULL AND resolved_at IS NOT NULL)",
            name=op.f("ck_sync_conflicts_resolved_together"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_conflicts")),
    )
    op.create_index(
        "ix_sync_conflicts_entity_kind_local_id",
        "sync_conflicts",
        ["entity_kind", "local_id"],
        unique=False,
    )
    op.create_index(
        "uq_sync_conflicts_open_target",
        "sync_conflicts",
        ["entity_kind", "local_id", "resource_type"],
        unique=True,
        sqlite_where=sa.text(OPEN_ONLY),
        postgresql_where=sa.text(OPEN_ONLY),
    )
    op.create_table(
        "sync_cursors",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sync_cursors")),
    )


def downgrade() -> None:
    op.drop_table("sync_cursors")
    op.drop_index(
        "uq_sync_conflicts_open_target",
        table_name="sync_conflicts",
        sqlite_where=sa.text(OPEN_ONLY),
        postgresql_where=sa.text(OPEN_ONLY),
    )
    op.drop_index("ix_sync_conflicts_entity_kind_local_id", table_name="sync_conflicts")
    op.drop_table("sync_conflicts")
