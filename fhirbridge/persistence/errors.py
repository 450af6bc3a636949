"""Errors raised by the persistence layer.

    PersistenceError
     +-- RecordNotFound        no row for (entity kind, local id)
     +-- RecordExists          ``add`` of an id that is already stored
     +-- ConstraintViolation   the database refused a write (foreign key, check, unique)
     +-- OutboxEntryNotFound   no outbox entry with that id
     +-- OutboxStateError      an outbox entry is not in a state that allows the operation

Messages carry kinds, ids and constraint names only, never record contents, so they are safe
to log.
"""

from __future__ import annotations

from fhirbridge.persistence.records import EntityKind, OutboxState


class PersistenceError(Exception):
    """Root of the persistence errors."""


class RecordNotFound(PersistenceError):
    def __init__(self, entity_kind: EntityKind, local_id: str) -> None:
        self.entity_kind = entity_kind
        self.local_id = local_id
        super().__init__(f"no {entity_kind.value} with id {local_id!r}")


class RecordExists(PersistenceError):
    def __init__(self, entity_kind: EntityKind, local_id: str) -> None:
        self.entity_kind = entity_kind
        self.local_id = local_id
        super().__init__(f"a {entity_kind.value} with id {local_id!r} is already stored")


class ConstraintViolation(PersistenceError):
    def __init__(self, entity_kind: EntityKind, local_id: str, constraint: str) -> None:
        self.entity_kind = entity_kind
        self.local_id = local_id
        self.constraint = constraint
        super().__init__(f"the database refused {entity_kind.value} {local_id!r}: {constraint}")


class OutboxEntryNotFound(PersistenceError):
    def __init__(self, entry_id: int) -> None:
        self.entry_id = entry_id
        super().__init__(f"no outbox entry {entry_id}")


class OutboxStateError(PersistenceError):
    def __init__(self, entry_id: int, state: OutboxState, *, expected: OutboxState) -> None:
        self.entry_id = entry_id
        self.state = state
        self.expected = expected
        super().__init__(f"outbox entry {entry_id} is {state.value}, expected {expected.value}")
