"""Persistence: engines and the unit of work, tables, repositories, the outbox and FHIR links.

Typical use::

    engine = make_engine(settings.database_url)
    migrate(settings.database_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        Store(session).save(referral, sync_as=("ServiceRequest", "Task"))
"""

from fhirbridge.persistence.db import make_engine, make_session_factory, unit_of_work
from fhirbridge.persistence.errors import (
    ConstraintViolation,
    OutboxEntryNotFound,
    OutboxStateError,
    PersistenceError,
    RecordExists,
    RecordNotFound,
)
from fhirbridge.persistence.migrate import migrate
from fhirbridge.persistence.records import (
    EntityKind,
    FhirLink,
    OutboxEntry,
    OutboxOperation,
    OutboxState,
    SyncTarget,
)
from fhirbridge.persistence.repositories.conflicts import (
    Conflict,
    ConflictNotFound,
    ConflictReason,
    ConflictResolved,
    ConflictState,
    Resolution,
)
from fhirbridge.persistence.store import Record, Store, entity_kind_of

__all__ = [
    "Conflict",
    "ConflictNotFound",
    "ConflictReason",
    "ConflictResolved",
    "ConflictState",
    "ConstraintViolation",
    "EntityKind",
    "FhirLink",
    "OutboxEntry",
    "OutboxEntryNotFound",
    "OutboxOperation",
    "OutboxState",
    "OutboxStateError",
    "PersistenceError",
    "Record",
    "RecordExists",
    "RecordNotFound",
    "Resolution",
    "Store",
    "SyncTarget",
    "entity_kind_of",
    "make_engine",
    "make_session_factory",
    "migrate",
    "unit_of_work",
]
