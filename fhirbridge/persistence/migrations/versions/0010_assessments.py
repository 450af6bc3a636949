"""Assessments and screening: responses to instruments (QuestionnaireResponse), the
observations derived from them and the health concerns they found (Condition).

Revision ID: 0010
Revises: 0001
Create Date: 2026-12-01

A branch from the initial schema (see ``migrate``: "heads"). Types are spelled out here, as in
0001, so this revision keeps describing the schema it created.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("assessments",)
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("questionnaire", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("authored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=True),
        sa.Column("answers", JSON_DOCUMENT, nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("band", sa.String(length=64), nullable=True),
        sa.Column("positive_domains", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_assessments_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["care_team_members.id"], name=op.f("fk_assessments_author_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
    )
    op.create_index(
        "ix_assessments_patient_id_questionnaire_authored_at",
        "assessments",
        ["patient_id", "questionnaire", "authored_at"],
        unique=False,
    )
    op.create_table(
        "screening_observations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("assessment_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("code", JSON_DOCUMENT, nullable=False),
        sa.Column("categories", JSON_DOCUMENT, nullable=False),
        sa.Column("value_code", JSON_DOCUMENT, nullable=True),
        sa.Column("value_integer", sa.Integer(), nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("performer_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient_links.id"],
            name=op.f("fk_screening_observations_patient_id"),
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_screening_observations_assessment_id"),
        ),
        sa.ForeignKeyConstraint(
            ["performer_id"],
            ["care_team_members.id"],
            name=op.f("fk_screening_observations_performer_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_observations")),
    )
    op.create_index(
        op.f("ix_screening_observations_patient_id"),
        "screening_observations",
        ["patient_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_screening_observations_assessment_id"),
        "screening_observations",
        ["assessment_id"],
        unique=False,
    )
    op.create_table(
        "health_concerns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("code", JSON_DOCUMENT, nullable=False),
        sa.Column("clinical_status", sa.String(length=32), nullable=False),
        sa.Column("categories", JSON_DOCUMENT, nullable=False),
        sa.Column("recorded_on", sa.Date(), nullable=True),
        sa.Column("recorder_id", sa.String(length=64), nullable=True),
        sa.Column("evidence_ids", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient_links.id"], name=op.f("fk_health_concerns_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["recorder_id"],
            ["care_team_members.id"],
            name=op.f("fk_health_concerns_recorder_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_concerns")),
    )
    op.create_index(
        op.f("ix_health_concerns_patient_id"), "health_concerns", ["patient_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_health_concerns_patient_id"), table_name="health_concerns")
    op.drop_table("health_concerns")
    op.drop_index(
        op.f("ix_screening_observations_assessment_id"), table_name="screening_observations"
    )
    op.drop_index(op.f("ix_screening_observations_patient_id"), table_name="screening_observations")
    op.drop_table("screening_observations")
    op.drop_index("ix_assessments_patient_id_questionnaire_authored_at", table_name="assessments")
    op.drop_table("assessments")
