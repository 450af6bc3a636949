"""The migrations build exactly the schema the tables describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from fhirbridge.persistence import migrate
from fhirbridge.persistence.tables import metadata


def test_migrated_schema_matches_the_tables(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_migrating_an_up_to_date_database_changes_nothing(db_url: str, engine: Engine) -> None:
    before = sorted(inspect(engine).get_table_names())
    migrate(db_url)
    engine.dispose()
    assert sorted(inspect(engine).get_table_names()) == before
