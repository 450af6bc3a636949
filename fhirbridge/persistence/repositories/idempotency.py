"""Idempotency records: the stored outcome of a write, replayed when a client retries it.

A request with a key first claims it (``claim``), then runs, then stores its answer
(``settle``), all in its own transaction. On PostgreSQL the claim is the record's row itself,
inserted unanswered with ``ON CONFLICT DO NOTHING``: a second request with the key waits on the
unique index until the first one's transaction ends, then either claims the key (the first
rolled back: nothing was stored) or reads the answer it committed, in a statement of its own
that begins after the wait, so READ COMMITTED shows it. Two statements on the way of every
keyed POST, where a lock, a lookup and an insert took three. On SQLite the transaction already
holds the database's write lock, so the claim is the lookup and ``settle`` inserts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql
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
# An unanswered record: the status a settled one never has (its answer is set by ``settle``).
_UNANSWERED = 0
_CLAIM = (
    postgresql.insert(_TABLE)
    .on_conflict_do_nothing(index_elements=[_TABLE.c.principal, _TABLE.c.idempotency_key])
    .returning(_TABLE.c.id)
)
_SETTLE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("record_id"))
    .values(status_code=bindparam("answer_status"), response_body=bindparam("answer_body"))
)
# Attempts to claim a key whose record vanished between the claim and the lookup (a record
# removed by hand); each one waits for no one, so this never loops for long.
_CLAIM_ATTEMPTS = 3


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


@dataclass(frozen=True, slots=True)
class Claim:
    """A key this transaction holds until it ends; ``IdempotencyRecords.settle`` stores the
    answer under it."""

    principal: str
    key: str
    method: str
    path: str
    request_hash: str
    record_id: int | None  # the unanswered row (PostgreSQL); None: settle inserts the record


class IdempotencyRecords:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self._session = session
        self._clock = clock

    def lock(self, *, principal: str, key: str) -> None:
        """Hold the key until the transaction ends; concurrent requests with it wait. Take it
        before ``find``: a retry arriving while the first request runs then gets the stored
        answer instead of running the request again."""
        lock_name(self._session, "idempotency-key", principal, key)

    def claim(
        self, *, principal: str, key: str, method: str, path: str, request_hash: str
    ) -> Claim | IdempotencyRecord:
        """Hold ``key`` for this transaction and return the claim, or return the record a
        request with the key stored before (waiting for one that still runs)."""
        if self._session.get_bind().dialect.name != "postgresql":
            self.lock(principal=principal, key=key)
            stored = self.find(principal=principal, key=key)
            if stored is not None:
                return stored
            return Claim(principal, key, method, path, request_hash, record_id=None)
        values = {
            "principal": principal,
            "idempotency_key": key,
            "method": method,
            "path": path,
            "request_hash": request_hash,
            "status_code": _UNANSWERED,
            "response_body": None,
            "created_at": self._clock(),
        }
        connection = self._session.connection()
        for _ in range(_CLAIM_ATTEMPTS):
            record_id = connection.execute(_CLAIM, values).scalar()
            if record_id is not None:
                return Claim(principal, key, method, path, request_hash, record_id=record_id)
            # Another transaction stored the key, and has committed by now: the claim waited
            # for it. This statement reads what it committed.
            stored = self.find(principal=principal, key=key)
            if stored is not None:
                return stored
        # Left to settle's insert: the unique key refuses it if another request got there.
        return Claim(principal, key, method, path, request_hash, record_id=None)

    def settle(
        self, claim: Claim, *, status_code: int, response_body: dict[str, Any] | None
    ) -> None:
        """Store the answer of the request that holds ``claim``."""
        if claim.record_id is None:
            self.remember(
                principal=claim.principal,
                key=claim.key,
                method=claim.method,
                path=claim.path,
                request_hash=claim.request_hash,
                status_code=status_code,
                response_body=response_body,
            )
            return
        self._session.connection().execute(
            _SETTLE,
            {
                "record_id": claim.record_id,
                "answer_status": status_code,
                "answer_body": response_body,
            },
        )

    def find(self, *, principal: str, key: str) -> IdempotencyRecord | None:
        found = (
            self._session.connection().execute(_FIND, {"principal": principal, "key": key}).first()
        )
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
        self._session.connection().execute(
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
