"""Assessments: a goal may address our own health concerns (``goals.concern_ids``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

On the assessments branch, after 0010 created ``health_concerns``; ``goals`` comes from 0001
(named in ``depends_on``, already an ancestor through 0010). Nullable: rows written before
read as addressing none. Types are spelled out here, as in 0001, so this revision keeps
describing the schema it changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0001"

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("goals") as batch:
        batch.add_column(sa.Column("concern_ids", JSON_DOCUMENT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("goals") as batch:
        batch.drop_column("concern_ids")
