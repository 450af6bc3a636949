"""Locks held until the transaction ends, for rules no row constraint states ("a staff member's
entries do not overlap", "a retry gets the first answer"): whoever checks such a rule takes the
lock first, so concurrent checkers take turns instead of each deciding on what it read before
the other one wrote.

PostgreSQL: ``pg_advisory_xact_lock`` on a 64-bit hash of the lock's name, released at commit
or rollback, after the holder's writes became visible, so a waiter's next read sees them (READ
COMMITTED reads afresh per statement). SQLite has no named locks and needs none: a transaction
begins with ``BEGIN IMMEDIATE`` (see ``persistence.db``) and holds the database's one write lock,
which serializes every other writer.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session


def lock_name(session: Session, *name: str) -> None:
    """Wait until no other transaction holds the lock ``name`` and take it until this one ends.

    Take it before reading what the rule is checked against: rows this session read earlier are
    expired, as another transaction may have changed them while this one waited.
    """
    if session.get_bind().dialect.name != "postgresql":
        session.connection()  # begins the transaction, so the write lock is held from here on
        return
    session.flush()
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(*name)})
    session.expire_all()


def lock_key(*name: str) -> int:
    """The advisory-lock key of ``name``, for a statement that takes the lock itself."""
    # A stable hash (Python's hash() differs per process); a collision only makes two unrelated
    # names take turns.
    digest = hashlib.blake2b(digest_size=8)
    for part in name:
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return int.from_bytes(digest.digest(), "big", signed=True)
