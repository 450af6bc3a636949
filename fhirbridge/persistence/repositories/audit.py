"""The audit trail: who changed which record when, and what it looked like before and after.

Rows hold record contents (the point of an audit trail), so they stay in the database and are
never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories.outbox import Clock, utc_now
from fhirbridge.persistence.tables import AuditEventRow

_TABLE = cast(Table, AuditEventRow.__table__)
_INSERT = insert(_TABLE).returning(_TABLE.c.id)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    occurred_at: datetime
    actor: str
    action: str  # "create", "update", "delete"...
    entity_kind: EntityKind
    local_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _to_record(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        entity_kind=EntityKind(row.entity_kind),
        local_id=row.local_id,
        before=row.before_json,
        after=row.after_json,
    )


class AuditTrail:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self._session = session
        self._clock = clock

    def record(
        self,
        *,
        actor: str,
        action: str,
        entity_kind: EntityKind,
        local_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> int:
        # One Core INSERT ... RETURNING, on the connection: every audited write takes this
        # path, and the ORM's add and flush cost several times the statement.
        values = {
            "occurred_at": self._clock(),
            "actor": actor,
            "action": action,
            "entity_kind": entity_kind.value,
            "local_id": local_id,
            "before_json": before,
            "after_json": after,
        }
        event_id: int = self._session.connection().execute(_INSERT, values).scalar_one()
        return event_id

    def for_record(self, entity_kind: EntityKind, local_id: str) -> list[AuditEvent]:
        """Oldest first."""
        rows = self._session.scalars(
            select(AuditEventRow)
            .where(
                AuditEventRow.entity_kind == entity_kind.value,
                AuditEventRow.local_id == local_id,
            )
            .order_by(AuditEventRow.id)
        )
        return [_to_record(row) for row in rows]
