"""Workflow layer: an API key may name the care-team member whose time it records.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-01

On the workflow branch, after 0003 created ``api_keys``. Types are spelled out here, as in
0001, so this revision keeps describing the schema it changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite adds a foreign key only by copying the table (PostgreSQL alters it).
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("staff_id", sa.String(length=64), nullable=True))
        batch.create_foreign_key(
            op.f("fk_api_keys_staff_id"), "care_team_members", ["staff_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("fk_api_keys_staff_id"), type_="foreignkey")
        batch.drop_column("staff_id")
