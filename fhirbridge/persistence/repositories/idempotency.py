"""Idempotency records: the stored outcome of a write, replayed when a client retries it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhirbridge.persistence.repositories.outbox import Clock, utc_now
from fhirbridge.persistence.tables import IdempotencyRecordRow


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


def _to_record(row: IdempotencyRecordRow) -> IdempotencyRecord:
    return IdempotencyRecord(
        principal=row.principal,
        key=row.idempotency_key,
        method=row.method,
        path=row.path,
        request_hash=row.request_hash,
        status_code=row.status_code,
        response_body=row.response_body,
        created_at=row.created_at,
    )


class IdempotencyRecords:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self._session = session
        self._clock = clock

    def find(self, *, principal: str, key: str) -> IdempotencyRecord | None:
        row = self._session.scalars(
            select(IdempotencyRecordRow).where(
                IdempotencyRecordRow.principal == principal,
                IdempotencyRecordRow.idempotency_key == key,
            )
        ).first()
        return None if row is None else _to_record(row)

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
        self._session.add(
            IdempotencyRecordRow(
                principal=principal,
                idempotency_key=key,
                method=method,
                path=path,
                request_hash=request_hash,
                status_code=status_code,
                response_body=response_body,
                created_at=self._clock(),
            )
        )
        self._session.flush()
