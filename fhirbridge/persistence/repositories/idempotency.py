"""Idempotency records: the stored outcome of a write, replayed when a client retries it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from fhirbridge.persistence.repositories._locks import lock_name
from fhirbridge.persistence.repositories.outbox import Clock, utc_now
from fhirbridge.persistence.tables import IdempotencyRecordRow

# Core, not ORM rows, and the lookup built once: both are on every keyed POST's path.
_TABLE = cast(Table, IdempotencyRecordRow.__table__)
_COLUMNS = tuple(
    _TABLE.c[name]
    for name in (
        "principal",
        "idempotency_key",
        "method",
        "path",
        "request_hash",
        "status_code",
        "response_body",
        "created_at",
    )
)
_FIND = select(*_COLUMNS).where(
    _TABLE.c.principal == bindparam("principal"),
    _TABLE.c.idempotency_key == bindparam("key"),
)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    principal: str
    key: str
    method: str
    path: str
    request_hash: str
    status_code: int
    response_body: dict[str, Any] | None
    created_at: datetime


class IdempotencyRecords:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self._session = session
        self._clock = clock

    def lock(self, *, principal: str, key: str) -> None:
        """Hold the key until the transaction ends; concurrent requests with it wait. Take it
        before ``find``: a retry arriving while the first request runs then gets the stored
        answer instead of running the request again."""
        lock_name(self._session, "idempotency-key", principal, key)

    def find(self, *, principal: str, key: str) -> IdempotencyRecord | None:
        found = self._session.execute(_FIND, {"principal": principal, "key": key}).first()
        if found is None:
            return None
        return IdempotencyRecord(
            principal=found.principal,
            key=found.idempotency_key,
            method=found.method,
            path=found.path,
            request_hash=found.request_hash,
            status_code=found.status_code,
            response_body=found.response_body,
            created_at=found.created_at,
        )

    def remember(
        self,
        *,
        principal: str,
        key: str,
        method: str,
        path: str,
        request_hash: str,
        status_code: int,
        response_body: dict[str, Any] | None,
    ) -> None:
        """Store the outcome; a concurrent request that stored one first makes the flush fail
        on the (principal, key) unique constraint, and its unit of work rolls back."""
        self._session.execute(
            insert(_TABLE),
            {
                "principal": principal,
                "idempotency_key": key,
                "method": method,
                "path": path,
                "request_hash": request_hash,
                "status_code": status_code,
                "response_body": response_body,
                "created_at": self._clock(),
            },
        )
