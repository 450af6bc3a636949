"""Sync layer: server profiles (what the push learned about each FHIR server, by base URL).

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01

On the sync branch. Types are spelled out here, as in 0001, so this revision keeps describing
the schema it created.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "server_profiles",
        sa.Column("base_url", sa.String(length=512), nullable=False),
        sa.Column("max_transaction_entries", sa.Integer(), nullable=True),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("base_url", name=op.f("pk_server_profiles")),
    )


def downgrade() -> None:
    op.drop_table("server_profiles")
