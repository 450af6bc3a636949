"""Sync conflicts: our record and the server copy disagree, and neither may silently win.

A conflict keeps both sides as resources (``local``: what we would send, ``remote``: what the
server holds, with its ``meta.versionId``) and the domain fields in dispute. There is at most one
open conflict per server resource: detecting the same disagreement again (the next pull, a
push answered with 412) refreshes it with the newest versions instead of piling up duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from fhirbridge.persistence.errors import PersistenceError
from fhirbridge.persistence.records import EntityKind, SyncTarget
from fhirbridge.persistence.repositories.outbox import Clock, utc_now
from fhirbridge.persistence.tables import SyncConflictRow

__all__ = [
    "Conflict",
    "ConflictNotFound",
    "ConflictReason",
    "ConflictResolved",
    "ConflictState",
    "Conflicts",
    "Resolution",
]


class ConflictReason(StrEnum):
    VERSION_CONFLICT = "version-conflict"  # a push was refused with 412: the server moved on
    CONCURRENT_EDIT = "concurrent-edit"  # a pulled change to a field we changed too
    INVALID_TRANSITION = "invalid-transition"  # a pulled status change the Task machine forbids


class ConflictState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    KEEP_LOCAL = "keep-local"  # our version is pushed over the server's
    TAKE_REMOTE = "take-remote"  # the server's version is applied to our record
    MANUAL = "manual"  # a person merged both into our record, which is then pushed


@dataclass(frozen=True, slots=True)
class Conflict:
    id: int
    entity_kind: EntityKind
    local_id: str
    resource_type: str
    reason: str
    fields: list[str]
    local: dict[str, Any]
    remote: dict[str, Any]
    state: ConflictState
    detected_at: datetime
    resolution: Resolution | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None

    @property
    def target(self) -> SyncTarget:
        return SyncTarget(self.entity_kind, self.local_id, self.resource_type)

    @property
    def remote_version(self) -> str | None:
        version = (self.remote.get("meta") or {}).get("versionId")
        return version if isinstance(version, str) else None


class ConflictNotFound(PersistenceError):
    def __init__(self, conflict_id: int) -> None:
        self.conflict_id = conflict_id
        super().__init__(f"no sync conflict {conflict_id}")


class ConflictResolved(PersistenceError):
    """The conflict was already resolved; resolving it twice would hide the first decision."""

    def __init__(self, conflict_id: int, resolution: Resolution) -> None:
        self.conflict_id = conflict_id
        self.resolution = resolution
        super().__init__(f"sync conflict {conflict_id} is already resolved ({resolution.value})")


def _to_record(row: SyncConflictRow) -> Conflict:
    return Conflict(
        id=row.id,
        entity_kind=EntityKind(row.entity_kind),
        local_id=row.local_id,
        resource_type=row.resource_type,
        reason=row.reason,
        fields=list(row.fields),
        local=dict(row.local),
        remote=dict(row.remote),
        state=ConflictState(row.state),
        detected_at=row.detected_at,
        resolution=None if row.resolution is None else Resolution(row.resolution),
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
    )


class Conflicts:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self._session = session
        self._clock = clock

    def record(
        self,
        *,
        target: SyncTarget,
        reason: str,
        fields: Sequence[str],
        local: dict[str, Any],
        remote: dict[str, Any],
    ) -> int:
        """Keep a disagreement about ``target``; returns the open conflict's id.

        If one is already open for ``target`` it is refreshed: newest reason and versions,
        fields in dispute accumulated, first detection time kept.
        """
        row = self._open_row(target)
        if row is None:
            row = SyncConflictRow(
                entity_kind=target.entity_kind.value,
                local_id=target.local_id,
                resource_type=target.resource_type,
                reason=reason,
                fields=list(dict.fromkeys(fields)),
                local=local,
                remote=remote,
                state=ConflictState.OPEN.value,
                detected_at=self._clock(),
            )
            self._session.add(row)
        else:
            row.reason = reason
            row.fields = list(dict.fromkeys([*row.fields, *fields]))
            row.local = local
            row.remote = remote
        self._session.flush()
        return row.id

    def open(self) -> list[Conflict]:
        """Every open conflict, oldest first: the work queue of whoever resolves them."""
        return self._all(
            select(SyncConflictRow)
            .where(SyncConflictRow.state == ConflictState.OPEN.value)
            .order_by(SyncConflictRow.detected_at, SyncConflictRow.id)
        )

    def open_for(self, target: SyncTarget) -> Conflict | None:
        row = self._open_row(target)
        return None if row is None else _to_record(row)

    def for_record(self, entity_kind: EntityKind, local_id: str) -> list[Conflict]:
        """A record's conflicts, open and resolved, newest first."""
        return self._all(
            select(SyncConflictRow)
            .where(
                SyncConflictRow.entity_kind == entity_kind.value,
                SyncConflictRow.local_id == local_id,
            )
            .order_by(SyncConflictRow.detected_at.desc(), SyncConflictRow.id.desc())
        )

    def get(self, conflict_id: int) -> Conflict | None:
        row = self._session.get(SyncConflictRow, conflict_id, populate_existing=True)
        return None if row is None else _to_record(row)

    def resolve(self, conflict_id: int, *, resolution: Resolution, by: str) -> Conflict:
        """Mark the conflict resolved; what the resolution does to the record is the sync
        layer's job (``fhirbridge.sync.conflicts``)."""
        if not by.strip():
            raise ValueError("a resolution needs to say who made it")
        row = self._session.get(SyncConflictRow, conflict_id, populate_existing=True)
        if row is None:
            raise ConflictNotFound(conflict_id)
        if row.state != ConflictState.OPEN.value:
            raise ConflictResolved(conflict_id, Resolution(str(row.resolution)))
        row.state = ConflictState.RESOLVED.value
        row.resolution = Resolution(resolution).value
        row.resolved_by = by
        row.resolved_at = self._clock()
        self._session.flush()
        return _to_record(row)

    def _open_row(self, target: SyncTarget) -> SyncConflictRow | None:
        return self._session.scalars(
            select(SyncConflictRow)
            .where(
                SyncConflictRow.entity_kind == target.entity_kind.value,
                SyncConflictRow.local_id == target.local_id,
                SyncConflictRow.resource_type == target.resource_type,
                SyncConflictRow.state == ConflictState.OPEN.value,
            )
            .execution_options(populate_existing=True)
        ).one_or_none()

    def _all(self, statement: Select[SyncConflictRow]) -> list[Conflict]:
        rows = self._session.scalars(statement.execution_options(populate_existing=True))
        return [_to_record(row) for row in rows]
