"""Dead letters: outbox entries the server refused for good, which a person either retries or
discards. A discarded entry leaves the outbox, so the audit trail keeps who discarded which
push and the server's reason for refusing it: nothing vanishes unexplained."""

from __future__ import annotations

from typing import Any

from fhirbridge.persistence import OutboxEntry, Store

__all__ = ["DISCARDED", "discard_dead_letter"]

DISCARDED = "discard-dead-letter"


def discard_dead_letter(*, store: Store, entry_id: int, by: str) -> OutboxEntry:
    """Drop the dead entry ``entry_id`` from the outbox and audit it as discarded by ``by``.

    Raises ``OutboxEntryNotFound`` for an unknown (or already discarded) entry and
    ``OutboxStateError`` for one that is not dead.
    """
    entry = store.outbox.discard(entry_id)
    store.audit.record(
        actor=by,
        action=DISCARDED,
        entity_kind=entry.entity_kind,
        local_id=entry.local_id,
        before=_as_audited(entry),
        after=None,
    )
    return entry


def _as_audited(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "outbox_entry": entry.id,
        "resource_type": entry.resource_type,
        "operation": entry.operation.value,
        "attempts": entry.attempts,
        "reason": entry.last_error,
        "server_outcome": entry.last_outcome,
    }
