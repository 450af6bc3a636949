"""Alembic environment: migrations run against the tables' metadata.

``fhirbridge.persistence.migrate(url)`` hands in an open connection. From the ``alembic``
command line, pass the database as ``-x url=...`` or set ``FHIRBRIDGE_DATABASE_URL``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from fhirbridge.persistence.db import make_engine
from fhirbridge.persistence.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _command_line_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "FHIRBRIDGE_DATABASE_URL"
    )
    if not url:
        raise SystemExit("give the database as -x url=... or FHIRBRIDGE_DATABASE_URL")
    return url


if context.is_offline_mode():
    context.configure(url=_command_line_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
    else:
        engine = make_engine(_command_line_url())
        try:
            with engine.begin() as connection:
                _run(connection)
        finally:
            engine.dispose()
