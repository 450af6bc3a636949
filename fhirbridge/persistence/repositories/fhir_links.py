"""Which server resource each local record is, and what the server last said about it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from fhirbridge.persistence.records import EntityKind, FhirLink, SyncTarget
from fhirbridge.persistence.repositories._upsert import insert_on_conflict
from fhirbridge.persistence.tables import FhirLinkRow

_KEY = ("entity_kind", "local_id", "resource_type")


def _to_record(row: FhirLinkRow) -> FhirLink:
    return FhirLink(
        entity_kind=EntityKind(row.entity_kind),
        local_id=row.local_id,
        resource_type=row.resource_type,
        server_id=row.server_id,
        synced_at=row.synced_at,
        version_id=row.version_id,
        etag=row.etag,
        content_hash=row.content_hash,
        server_json=row.server_json,
    )


def _to_columns(link: FhirLink) -> dict[str, Any]:
    return {
        "entity_kind": link.entity_kind.value,
        "local_id": link.local_id,
        "resource_type": link.resource_type,
        "server_id": link.server_id,
        "version_id": link.version_id,
        "etag": link.etag,
        "content_hash": link.content_hash,
        "server_json": link.server_json,
        "synced_at": link.synced_at,
    }


class FhirLinks:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, target: SyncTarget) -> FhirLink | None:
        return self._one(
            select(FhirLinkRow).where(
                FhirLinkRow.entity_kind == target.entity_kind.value,
                FhirLinkRow.local_id == target.local_id,
                FhirLinkRow.resource_type == target.resource_type,
            )
        )

    def get_many(self, targets: Iterable[SyncTarget]) -> dict[SyncTarget, FhirLink]:
        """The links of many targets in a query per entity kind (a push batch)."""
        wanted = set(targets)
        ids_by_kind: dict[EntityKind, set[str]] = {}
        for target in wanted:
            ids_by_kind.setdefault(target.entity_kind, set()).add(target.local_id)
        found: dict[SyncTarget, FhirLink] = {}
        for kind, ids in ids_by_kind.items():
            statement = select(FhirLinkRow).where(
                FhirLinkRow.entity_kind == kind.value, FhirLinkRow.local_id.in_(ids)
            )
            for link in self._all(statement):
                target = SyncTarget(link.entity_kind, link.local_id, link.resource_type)
                if target in wanted:
                    found[target] = link
        return found

    def counts_by_type(self) -> dict[str, int]:
        """How many local records are linked to a server resource, per resource type."""
        rows = self._session.execute(
            select(FhirLinkRow.resource_type, func.count()).group_by(FhirLinkRow.resource_type)
        )
        return {str(resource_type): int(count) for resource_type, count in rows}

    def find_by_server_id(self, resource_type: str, server_id: str) -> FhirLink | None:
        return self._one(
            select(FhirLinkRow).where(
                FhirLinkRow.resource_type == resource_type, FhirLinkRow.server_id == server_id
            )
        )

    def for_record(self, entity_kind: EntityKind, local_id: str) -> list[FhirLink]:
        return self._all(
            select(FhirLinkRow)
            .where(FhirLinkRow.entity_kind == entity_kind.value, FhirLinkRow.local_id == local_id)
            .order_by(FhirLinkRow.resource_type)
        )

    def _one(self, statement: Select[FhirLinkRow]) -> FhirLink | None:
        found = self._all(statement)
        return found[0] if found else None

    def _all(self, statement: Select[FhirLinkRow]) -> list[FhirLink]:
        # upsert() writes with a bulk statement, so rows loaded earlier in this session would
        # still show the old version without populate_existing.
        rows = self._session.scalars(statement.execution_options(populate_existing=True))
        return [_to_record(row) for row in rows]

    def upsert(self, link: FhirLink) -> None:
        """Record what the server holds now; replaces the previous link for the same target."""
        self.upsert_many([link])

    def upsert_many(self, links: Sequence[FhirLink]) -> None:
        """``upsert`` for a whole push batch, in one statement."""
        if not links:
            return
        rows = [_to_columns(link) for link in links]
        statement = insert_on_conflict(self._session, FhirLinkRow)
        statement = statement.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={column: statement.excluded[column] for column in rows[0] if column not in _KEY},
        )
        self._session.execute(statement, rows)

    def delete(self, target: SyncTarget) -> None:
        self._session.execute(
            delete(FhirLinkRow).where(
                FhirLinkRow.entity_kind == target.entity_kind.value,
                FhirLinkRow.local_id == target.local_id,
                FhirLinkRow.resource_type == target.resource_type,
            )
        )
