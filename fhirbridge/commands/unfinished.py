"""Work a sync left undone, as a table a person can act on: dead letters (the record, the
resource, why it was refused, with the server's OperationOutcome diagnostics) and open
conflicts (which fields, and why). ``sync push``, ``sync pull`` and ``demo`` print it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.fhir import Outcome
from fhirbridge.persistence import Conflict, OutboxEntry, Store

__all__ = ["Unfinished", "print_unfinished", "unfinished"]

Unfinished = tuple[list[OutboxEntry], list[Conflict]]


def unfinished(sessions: sessionmaker[Session]) -> Unfinished:
    """The dead letters and open conflicts in storage."""
    with sessions() as session:
        store = Store(session)
        return store.outbox.dead_letters(), store.conflicts.open()


def print_unfinished(
    console: Console, dead_letters: Sequence[OutboxEntry], conflicts: Sequence[Conflict]
) -> bool:
    """Print the table; True when there was anything to print (work left undone)."""
    if not dead_letters and not conflicts:
        return False
    table = Table(title="Left undone")
    for column in ("", "kind", "id", "resource", "reason"):
        table.add_column(column)
    for entry in dead_letters:
        table.add_row(
            Text("dead letter", style="red"),
            entry.entity_kind.value,
            entry.local_id,
            entry.resource_type,
            Text(_dead_reason(entry)),
        )
    for conflict in conflicts:
        fields = f" ({', '.join(conflict.fields)})" if conflict.fields else ""
        table.add_row(
            Text("conflict", style="yellow"),
            conflict.entity_kind.value,
            conflict.local_id,
            conflict.resource_type,
            Text(f"{conflict.reason}{fields}"),
        )
    console.print(table)
    return True


def _dead_reason(entry: OutboxEntry) -> str:
    reason = entry.last_error or "no reason recorded"
    outcome = Outcome.from_json(entry.last_outcome) if entry.last_outcome else None
    diagnostics = outcome.summary() if outcome is not None else ""
    if diagnostics and diagnostics not in reason:
        reason = f"{reason}; server: {diagnostics}"
    return reason
