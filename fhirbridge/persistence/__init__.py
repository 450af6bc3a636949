"""Persistence: engines and the unit of work, tables, repositories, the outbox and FHIR links.

Typical use::

    engine = make_engine(settings.database_url)
    migrate(settings.database_url)
    sessions = make_session_factory(engine, sync_plan=load_mappings(settings.mappings_dir).plan)
    with unit_of_work(sessions) as session:
        Store(session).save(referral)  # + outbox: ServiceRequest, Task (from the mapping files)
    with unit_of_work(sessions, read_only=True) as session:  # never waits for writers
        Store(session).referrals.get(referral.id)
"""

from fhirbridge.persistence.db import (
    DatabaseBusy,
    backend_of,
    make_engine,
    make_session_factory,
    sync_plan_of,
    unit_of_work,
)
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
from fhirbridge.persistence.store import Record, Store, SyncPlanMissing, entity_kind_of

__all__ = [
    "Conflict",
    "ConflictNotFound",
    "ConflictReason",
    "ConflictResolved",
    "ConflictState",
    "ConstraintViolation",
    "DatabaseBusy",
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
    "SyncPlanMissing",
    "SyncTarget",
    "backend_of",
    "entity_kind_of",
    "make_engine",
    "make_session_factory",
    "migrate",
    "sync_plan_of",
    "unit_of_work",
]
