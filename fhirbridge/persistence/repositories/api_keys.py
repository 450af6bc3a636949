"""API keys of machine clients, stored as SHA-256 hashes with the role they grant (and the
team and care-team member they act for).

A key reads ``fbk_<key id>.<secret>``; only the SHA-256 of the whole key is kept, so a key is
shown once, when it is issued (``ApiKeys.issue``), and never again.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from fhirbridge.persistence.errors import PersistenceError
from fhirbridge.persistence.repositories.outbox import Clock, utc_now
from fhirbridge.persistence.tables import ApiKeyRow

API_KEY_PREFIX = "fbk_"


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(key_id: str) -> tuple[str, str]:
    """A fresh key for ``key_id`` and the hash to store."""
    if not key_id or "." in key_id:
        raise ValueError("an API key id is non-empty and has no '.'")
    key = f"{API_KEY_PREFIX}{key_id}.{secrets.token_urlsafe(32)}"
    return key, api_key_hash(key)


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
    staff_id: str | None = None  # the care-team member whose time the key records


def _to_record(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        key_hash=row.key_hash,
        role=row.role,
        team=row.team,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        staff_id=row.staff_id,
    )


class ApiKeys:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self._session = session
        self._clock = clock

    def get(self, key_id: str) -> ApiKey | None:
        row = self._session.get(ApiKeyRow, key_id)
        return None if row is None else _to_record(row)

    def add(
        self,
        *,
        key_id: str,
        key_hash: str,
        role: str,
        team: str | None,
        staff_id: str | None = None,
    ) -> ApiKey:
        if self._session.get(ApiKeyRow, key_id) is not None:
            raise ApiKeyExists(key_id)
        row = ApiKeyRow(
            id=key_id,
            key_hash=key_hash,
            role=role,
            team=team,
            staff_id=staff_id,
            created_at=self._clock(),
        )
        self._session.add(row)
        self._session.flush()
        return _to_record(row)

    def issue(
        self, *, key_id: str, role: str, team: str | None, staff_id: str | None = None
    ) -> str:
        """Store a new key's hash with what it grants; returns the key, which is not kept."""
        key, digest = new_api_key(key_id)
        self.add(key_id=key_id, key_hash=digest, role=role, team=team, staff_id=staff_id)
        return key

    def revoke(self, key_id: str) -> None:
        row = self._session.get(ApiKeyRow, key_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = self._clock()
            self._session.flush()
