"""The outbox: local changes waiting to reach the FHIR server.

Entries are written in the same transaction as the change they announce (see ``Store.save``),
so a change is never lost and never announced without having happened. A worker claims due
entries, pushes them, and marks each done, failed (to retry later) or dead (for a person).

Claim in its own short unit of work and commit before pushing: the claim is what keeps other
workers away while the push is under way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from fhirbridge.persistence.errors import OutboxEntryNotFound, OutboxStateError
from fhirbridge.persistence.records import (
    EntityKind,
    OutboxEntry,
    OutboxOperation,
    OutboxState,
    SyncTarget,
)
from fhirbridge.persistence.tables import PENDING_ONLY, OutboxRow, UtcDateTime

Clock = Callable[[], datetime]

_PENDING = OutboxState.PENDING.value
_TARGET = ("entity_kind", "local_id", "resource_type")


_WAITING = "waiting since"


def utc_now() -> datetime:
    return datetime.now(UTC)


def waiting_since(entry: OutboxEntry) -> datetime | None:
    """When ``entry`` began waiting for records it references (see ``Outbox.defer``)."""
    error = entry.last_error or ""
    if not error.startswith(f"{_WAITING} "):
        return None
    stamp = error[len(_WAITING) + 1 :].split(" ", 1)[0]
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _waited_names(error: str) -> list[str]:
    _, found, names = error.partition(" for ")
    return names.split(", ") if found else []


def _to_record(row: OutboxRow | Row[Any]) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        entity_kind=EntityKind(row.entity_kind),
        local_id=row.local_id,
        resource_type=row.resource_type,
        operation=OutboxOperation(row.operation),
        state=OutboxState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        claimed_by=row.claimed_by,
        claimed_at=row.claimed_at,
        last_error=row.last_error,
        last_outcome=row.last_outcome,
    )


# Every saved record runs this statement: it is built once per backend, as building it (the
# EXCLUDED alias above all) costs more than running it. Core, so no ORM bulk-insert machinery.
_COALESCING_INSERTS: dict[str, Executable] = {}


def _coalescing_insert(dialect: str) -> Executable:
    table = cast(Table, OutboxRow.__table__)
    if dialect == "postgresql":
        statement: postgresql.Insert | sqlite.Insert = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise ValueError(f"no upsert for database backend {dialect!r}")
    now = bindparam("now", type_=UtcDateTime())
    statement = statement.values(
        entity_kind=bindparam("entity_kind"),
        local_id=bindparam("local_id"),
        resource_type=bindparam("resource_type"),
        operation=bindparam("operation"),
        state=_PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    coalescing = statement.on_conflict_do_update(
        index_elements=list(_TARGET),
        # Spelled as the index's own predicate so PostgreSQL can infer the index.
        index_where=text(PENDING_ONLY),
        set_={"operation": statement.excluded.operation, "updated_at": now},
    ).returning(table.c.id)
    _COALESCING_INSERTS[dialect] = coalescing
    return coalescing


class Outbox:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self._session = session
        self._clock = clock

    def enqueue(
        self,
        target: SyncTarget,
        *,
        operation: OutboxOperation = OutboxOperation.UPSERT,
        now: datetime | None = None,
    ) -> int:
        """Announce that ``target`` must be pushed; returns the pending entry's id.

        Repeated changes before a push coalesce into the one pending entry: the latest
        operation wins, and a retry delay already set on it is kept.
        """
        now = now or self._clock()
        dialect = self._session.get_bind().dialect.name
        statement = _COALESCING_INSERTS.get(dialect)
        if statement is None:
            statement = _coalescing_insert(dialect)
        values = {
            "entity_kind": target.entity_kind.value,
            "local_id": target.local_id,
            "resource_type": target.resource_type,
            "operation": operation.value,
            "now": now,
        }
        # On the connection: a Core statement needs none of the session's ORM handling.
        entry_id: int = self._session.connection().execute(statement, values).scalar_one()
        return entry_id

    def claim(
        self, *, batch_size: int, worker_id: str, now: datetime | None = None
    ) -> list[OutboxEntry]:
        """Move up to ``batch_size`` due entries to in_flight for ``worker_id``, oldest first.

        On PostgreSQL rows another worker is claiming right now are skipped, not waited for
        (``FOR UPDATE SKIP LOCKED``). SQLite has one writer at a time, so the state guard on
        the UPDATE is all it needs.
        """
        now = now or self._clock()
        # Two statements on purpose: inside UPDATE ... WHERE id IN (subquery), PostgreSQL may
        # run a LIMIT ... SKIP LOCKED subquery more than once and claim more than batch_size.
        due = list(
            self._session.scalars(
                select(OutboxRow.id)
                .where(OutboxRow.state == _PENDING, OutboxRow.next_attempt_at <= now)
                .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        if not due:
            return []
        statement = (
            update(OutboxRow)
            .where(OutboxRow.id.in_(due), OutboxRow.state == _PENDING)
            .values(
                state=OutboxState.IN_FLIGHT.value,
                claimed_by=worker_id,
                claimed_at=now,
                attempts=OutboxRow.attempts + 1,
                updated_at=now,
            )
            # Columns, not ORM rows: a claimed batch is read once, and loading hundreds of
            # entities into the session cost more than the claim itself.
            .returning(*OutboxRow.__table__.columns)
            .execution_options(synchronize_session=False)
        )
        rows = self._session.execute(statement).all()
        entries = [_to_record(row) for row in rows]
        return sorted(entries, key=lambda entry: (entry.next_attempt_at, entry.id))

    def mark_done_many(self, entry_ids: Sequence[int], *, now: datetime | None = None) -> None:
        """``mark_done`` for a whole push batch, in two statements instead of 2n."""
        if not entry_ids:
            return
        in_flight = set(
            self._session.scalars(
                select(OutboxRow.id).where(
                    OutboxRow.id.in_(entry_ids), OutboxRow.state == OutboxState.IN_FLIGHT.value
                )
            )
        )
        for entry_id in entry_ids:
            if entry_id not in in_flight:
                self._claimed(entry_id)  # raises the precise error for that entry
        self._session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(in_flight))
            .values(state=OutboxState.DONE.value, updated_at=now or self._clock())
            .execution_options(synchronize_session=False)
        )

    def mark_done(self, entry_id: int, *, now: datetime | None = None) -> None:
        row = self._claimed(entry_id)
        row.state = OutboxState.DONE.value
        row.updated_at = now or self._clock()
        self._session.flush()

    def mark_failed(
        self,
        entry_id: int,
        *,
        transient: bool,
        error: str,
        outcome: dict[str, Any] | None = None,
        retry_at: datetime | None = None,
        now: datetime | None = None,
    ) -> OutboxEntry:
        """Record a failed push: back to pending until ``retry_at`` if ``transient``, else dead.

        A transient failure of an entry that a newer pending change already covers retires the
        entry (done, with the error kept) and delays that newer entry until ``retry_at``.
        """
        if transient and retry_at is None:
            raise ValueError("a transient failure needs retry_at")
        now = now or self._clock()
        row = self._claimed(entry_id)
        row.last_error = error
        row.last_outcome = outcome
        row.updated_at = now
        if transient:
            assert retry_at is not None  # checked above; narrows the type
            self._back_to_pending(row, next_attempt_at=retry_at)
        else:
            row.state = OutboxState.DEAD.value
        self._session.flush()
        return _to_record(row)

    def dead_letters(self) -> list[OutboxEntry]:
        return self.in_state(OutboxState.DEAD)

    def in_state(self, state: OutboxState) -> list[OutboxEntry]:
        """The entries in ``state``, least recently changed first."""
        rows = self._session.scalars(
            select(OutboxRow)
            .where(OutboxRow.state == state.value)
            .order_by(OutboxRow.updated_at, OutboxRow.id)
            .execution_options(populate_existing=True)
        )
        return [_to_record(row) for row in rows]

    def retry(self, entry_id: int, *, now: datetime | None = None) -> int:
        """Give a dead entry a fresh start; returns the id of the entry that will be pushed.

        That is the dead entry itself, or the newer pending entry for the same target that
        already covers it (the dead one is then retired as done).
        """
        now = now or self._clock()
        row = self._load(entry_id)
        if row.state != OutboxState.DEAD.value:
            raise OutboxStateError(entry_id, OutboxState(row.state), expected=OutboxState.DEAD)
        row.attempts = 0
        row.updated_at = now
        pushed_by = self._back_to_pending(row, next_attempt_at=now)
        self._session.flush()
        return pushed_by

    def discard(self, entry_id: int) -> OutboxEntry:
        """Give up on a dead entry for good; returns it as it was, for the caller to record
        who discarded what and why the server refused it.

        The entry is deleted rather than moved to a state of its own: the state column's CHECK
        constraint knows no such state, and a deletion needs no migration.
        """
        row = self._load(entry_id)
        if row.state != OutboxState.DEAD.value:
            raise OutboxStateError(entry_id, OutboxState(row.state), expected=OutboxState.DEAD)
        entry = _to_record(row)
        self._session.delete(row)
        self._session.flush()
        return entry

    def release_stale(self, *, claimed_before: datetime, now: datetime | None = None) -> int:
        """Return in-flight entries claimed before ``claimed_before`` (their worker died) to
        pending; returns how many were released."""
        now = now or self._clock()
        rows = self._session.scalars(
            select(OutboxRow)
            .where(
                OutboxRow.state == OutboxState.IN_FLIGHT.value,
                OutboxRow.claimed_at < claimed_before,
            )
            .order_by(OutboxRow.id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).all()
        for row in rows:
            row.updated_at = now
            self._back_to_pending(row, next_attempt_at=now)
            self._session.flush()
        return len(rows)

    def release(
        self, entry_ids: Sequence[int], *, worker_id: str, now: datetime | None = None
    ) -> int:
        """Give back entries ``worker_id`` claimed but did not push (a cancelled batch): they
        are due again at once and the claim does not count as an attempt. Entries no longer
        in flight for that worker are left alone; returns how many were released."""
        now = now or self._clock()
        rows = self._held_rows(entry_ids, worker_id)
        for row in rows:
            row.attempts = max(0, row.attempts - 1)
            row.updated_at = now
            self._back_to_pending(row, next_attempt_at=now)
            self._session.flush()
        return len(rows)

    def held(self, entry_ids: Sequence[int], *, worker_id: str) -> list[OutboxEntry]:
        """Those of ``entry_ids`` still in flight under ``worker_id``'s claim."""
        return [_to_record(row) for row in self._held_rows(entry_ids, worker_id)]

    def _held_rows(self, entry_ids: Sequence[int], worker_id: str) -> list[OutboxRow]:
        if not entry_ids:
            return []
        return list(
            self._session.scalars(
                select(OutboxRow)
                .where(
                    OutboxRow.id.in_(entry_ids),
                    OutboxRow.state == OutboxState.IN_FLIGHT.value,
                    OutboxRow.claimed_by == worker_id,
                )
                .order_by(OutboxRow.id)
                .execution_options(populate_existing=True)
            )
        )

    def get(self, entry_id: int) -> OutboxEntry | None:
        row = self._session.get(OutboxRow, entry_id, populate_existing=True)
        return None if row is None else _to_record(row)

    def any_waiting(self, targets: Sequence[SyncTarget]) -> bool:
        """Whether any of ``targets`` has a push pending or under way."""
        for target in targets:
            found = self._session.scalar(
                select(OutboxRow.id)
                .where(
                    OutboxRow.entity_kind == target.entity_kind.value,
                    OutboxRow.local_id == target.local_id,
                    OutboxRow.resource_type == target.resource_type,
                    OutboxRow.state.in_([_PENDING, OutboxState.IN_FLIGHT.value]),
                )
                .limit(1)
            )
            if found is not None:
                return True
        return False

    def waiting(self, targets: Sequence[SyncTarget]) -> set[SyncTarget]:
        """Those of ``targets`` with a push pending or under way (one query per 500)."""
        wanted = set(targets)
        found: set[SyncTarget] = set()
        ordered = sorted(wanted, key=lambda t: (t.entity_kind.value, t.local_id, t.resource_type))
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            rows = self._session.execute(
                select(OutboxRow.entity_kind, OutboxRow.local_id, OutboxRow.resource_type).where(
                    OutboxRow.local_id.in_({t.local_id for t in chunk}),
                    OutboxRow.state.in_([_PENDING, OutboxState.IN_FLIGHT.value]),
                )
            )
            for kind, local_id, resource_type in rows:
                target = SyncTarget(EntityKind(kind), local_id, resource_type)
                if target in wanted:
                    found.add(target)
        return found

    def defer(
        self,
        entry_id: int,
        *,
        waiting_for: Sequence[SyncTarget],
        since: datetime,
        retry_at: datetime,
        now: datetime | None = None,
    ) -> None:
        """Put a claimed entry back to pending because the records it references are not on
        the server yet; ``wake`` makes it due as soon as one of them is pushed."""
        names = ", ".join(f"{t.entity_kind.value}/{t.local_id}" for t in waiting_for)
        error = f"{_WAITING} {since.astimezone(UTC).isoformat()} for {names}"
        self.mark_failed(entry_id, transient=True, error=error, retry_at=retry_at, now=now)

    def wake(self, pushed: Sequence[SyncTarget], *, now: datetime | None = None) -> int:
        """Make entries deferred for any of ``pushed`` due now; returns how many."""
        now = now or self._clock()
        wanted = {f"{t.entity_kind.value}/{t.local_id}" for t in pushed}
        if not wanted:
            return 0
        # One read of the deferred entries, matched here: a LIKE per pushed record cost every
        # push batch a query per 50 records, each reading the deferred entries again.
        deferred = self._session.execute(
            select(OutboxRow.id, OutboxRow.last_error).where(
                OutboxRow.state == _PENDING,
                OutboxRow.next_attempt_at > now,
                OutboxRow.last_error.like(f"{_WAITING} %"),
            )
        )
        due = [
            entry_id
            for entry_id, error in deferred
            if wanted.intersection(_waited_names(error or ""))
        ]
        for start in range(0, len(due), 500):
            self._session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(due[start : start + 500]))
                .values(next_attempt_at=now)
                .execution_options(synchronize_session="evaluate")
            )
        return len(due)

    def next_due(self) -> datetime | None:
        """When the soonest pending entry becomes due (None when nothing is pending)."""
        return self._session.scalar(
            select(OutboxRow.next_attempt_at)
            .where(OutboxRow.state == _PENDING)
            .order_by(OutboxRow.next_attempt_at)
            .limit(1)
        )

    def counts(self) -> dict[OutboxState, int]:
        """How many entries are in each state (every state present, zero when empty)."""
        found = {
            state: count
            for state, count in self._session.execute(
                select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
            )
        }
        return {state: found.get(state.value, 0) for state in OutboxState}

    def _load(self, entry_id: int) -> OutboxRow:
        row = self._session.get(OutboxRow, entry_id, populate_existing=True)
        if row is None:
            raise OutboxEntryNotFound(entry_id)
        return row

    def _claimed(self, entry_id: int) -> OutboxRow:
        row = self._load(entry_id)
        if row.state != OutboxState.IN_FLIGHT.value:
            raise OutboxStateError(entry_id, OutboxState(row.state), expected=OutboxState.IN_FLIGHT)
        return row

    def _back_to_pending(self, row: OutboxRow, *, next_attempt_at: datetime) -> int:
        # Only one pending entry per target may exist (uq_outbox_pending_target). If a newer
        # change was enqueued meanwhile, it will push the latest state anyway.
        newer = self._session.scalars(
            select(OutboxRow).where(
                OutboxRow.entity_kind == row.entity_kind,
                OutboxRow.local_id == row.local_id,
                OutboxRow.resource_type == row.resource_type,
                OutboxRow.state == _PENDING,
                OutboxRow.id != row.id,
            )
        ).one_or_none()
        row.claimed_by = None
        row.claimed_at = None
        if newer is None:
            row.state = _PENDING
            row.next_attempt_at = next_attempt_at
            return row.id
        row.state = OutboxState.DONE.value
        note = f"superseded by outbox entry {newer.id}"
        row.last_error = f"{note}: {row.last_error}" if row.last_error else note
        newer.next_attempt_at = max(newer.next_attempt_at, next_attempt_at)
        return newer.id
