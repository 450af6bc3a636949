"""INSERT ... ON CONFLICT, spelled for whichever backend the session is bound to."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fhirbridge.persistence.tables import Base


def insert_on_conflict(session: Session, row_type: type[Base]) -> postgresql.Insert | sqlite.Insert:
    # Both dialects share the on_conflict_do_update(index_elements, index_where, set_) shape.
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(row_type)
    if name == "sqlite":
        return sqlite.insert(row_type)
    raise ValueError(f"no upsert for database backend {name!r}")
