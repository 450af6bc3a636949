"""API keys of machine clients, stored as SHA-256 hashes with the role they grant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from fhirbridge.persistence.errors import PersistenceError
from fhirbridge.persistence.repositories.outbox import Clock, utc_now
from fhirbridge.persistence.tables import ApiKeyRow


class ApiKeyExists(PersistenceError):
    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"an API key with id {key_id!r} is already stored")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    key_hash: str  # hex SHA-256 of the whole key
    role: str
    team: str | None
    created_at: datetime
    revoked_at: datetime | None = None


def _to_record(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        key_hash=row.key_hash,
        role=row.role,
        team=row.team,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class ApiKeys:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self._session = session
        self._clock = clock

    def get(self, key_id: str) -> ApiKey | None:
        row = self._session.get(ApiKeyRow, key_id)
        return None if row is None else _to_record(row)

    def add(self, *, key_id: str, key_hash: str, role: str, team: str | None) -> ApiKey:
        if self._session.get(ApiKeyRow, key_id) is not None:
            raise ApiKeyExists(key_id)
        row = ApiKeyRow(
            id=key_id, key_hash=key_hash, role=role, team=team, created_at=self._clock()
        )
        self._session.add(row)
        self._session.flush()
        return _to_record(row)

    def revoke(self, key_id: str) -> None:
        row = self._session.get(ApiKeyRow, key_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = self._clock()
            self._session.flush()
