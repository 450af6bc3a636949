"""What every entity repository shares: rows in, domain objects out, flush but never commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Select, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhirbridge.persistence.errors import (
    ConstraintViolation,
    RecordExists,
    RecordNotFound,
)
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.tables import Base


class Identified(Protocol):
    @property
    def id(self) -> str: ...


EntityT = TypeVar("EntityT", bound=Identified)
RowT = TypeVar("RowT", bound=Base)


def constraint_name(error: IntegrityError) -> str:
    """The violated constraint, without the row values some drivers put in their messages."""
    diag = getattr(error.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if isinstance(name, str) and name:
        return name
    # SQLite names the constraint or the columns in its one-line message and never the values.
    return str(error.orig).splitlines()[0]


def flush(session: Session, kind: EntityKind, local_id: str) -> None:
    try:
        session.flush()
    except IntegrityError as error:
        raise ConstraintViolation(kind, local_id, constraint_name(error)) from error


class Repository(Generic[EntityT, RowT]):
    """Stores one kind of domain object in one table; subclasses say how fields map to columns."""

    def __init__(self, session: Session, *, kind: EntityKind, row_type: type[RowT]) -> None:
        self._session = session
        self.kind = kind
        self._row_type = row_type

    def _to_columns(self, entity: EntityT) -> dict[str, Any]:
        raise NotImplementedError

    def _to_entity(self, row: RowT) -> EntityT:
        raise NotImplementedError

    def _after_write(self, entity: EntityT) -> None:
        """Write what lives outside the entity's own row (a care plan's lists)."""

    def get(self, local_id: str) -> EntityT | None:
        row = self._session.get(self._row_type, local_id)
        return None if row is None else self._to_entity(row)

    def get_many(self, local_ids: Iterable[str]) -> dict[str, EntityT]:
        """Many records by id in one query (missing ones are absent from the result)."""
        ids = set(local_ids)
        if not ids:
            return {}
        key = inspect(self._row_type).primary_key[0]
        rows = self._session.scalars(select(self._row_type).where(key.in_(ids))).all()
        return {entity.id: entity for entity in (self._to_entity(row) for row in rows)}

    def require(self, local_id: str) -> EntityT:
        entity = self.get(local_id)
        if entity is None:
            raise RecordNotFound(self.kind, local_id)
        return entity

    def add(self, entity: EntityT) -> None:
        if self._session.get(self._row_type, entity.id) is not None:
            raise RecordExists(self.kind, entity.id)
        self._session.add(self._row_type(**self._to_columns(entity)))
        self._write_rest(entity)

    def update(self, entity: EntityT) -> None:
        row = self._session.get(self._row_type, entity.id)
        if row is None:
            raise RecordNotFound(self.kind, entity.id)
        self._assign(row, entity)

    def save(self, entity: EntityT) -> None:
        """Insert or update, whichever applies."""
        row = self._session.get(self._row_type, entity.id)
        if row is None:
            self._session.add(self._row_type(**self._to_columns(entity)))
            self._write_rest(entity)
        else:
            self._assign(row, entity)

    def delete(self, local_id: str) -> None:
        row = self._session.get(self._row_type, local_id)
        if row is None:
            raise RecordNotFound(self.kind, local_id)
        self._session.delete(row)
        flush(self._session, self.kind, local_id)

    def _assign(self, row: RowT, entity: EntityT) -> None:
        for column, value in self._to_columns(entity).items():
            setattr(row, column, value)
        self._write_rest(entity)

    def _write_rest(self, entity: EntityT) -> None:
        # Flushing per write keeps the statement order the caller's order, so a foreign key
        # names the row the caller just saved, and a violation names the record it came from.
        flush(self._session, self.kind, entity.id)
        self._after_write(entity)
        flush(self._session, self.kind, entity.id)

    def _list(self, statement: Select[RowT]) -> list[EntityT]:
        rows: Sequence[RowT] = self._session.scalars(statement).all()
        return [self._to_entity(row) for row in rows]
