"""Claims: which outbox entries a worker holds, and giving them back.

Rules:

- entries are claimed in a short unit of work of their own and committed before anything is
  sent (on PostgreSQL with ``FOR UPDATE SKIP LOCKED``), so other workers skip them; a claim
  counts as an attempt;
- a claimed batch is pushed in push-plan order (``Mappings.plan.rank``: what a resource
  references goes first), oldest entry first within a rank;
- a batch that is cancelled (the other lane failed, Ctrl-C) gives its claim back at once:
  its entries are due again and the claim is not counted as an attempt;
- a worker that dies holds its entries only for the lease: ``release_stale`` returns entries
  claimed longer ago to pending.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.mapping.plan import SyncPlan
from fhirbridge.persistence import OutboxEntry, Store, unit_of_work

__all__ = ["Claims"]


class Claims:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        worker_id: str,
        plan: SyncPlan,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self.worker_id = worker_id
        self._plan = plan
        self._clock = clock

    def claim(self, batch_size: int) -> list[OutboxEntry]:
        """Claim up to ``batch_size`` due entries, in push order."""
        with unit_of_work(self._sessions) as session:
            claimed = Store(session).outbox.claim(
                batch_size=batch_size, worker_id=self.worker_id, now=self._clock()
            )
        return sorted(claimed, key=self.rank)

    def rank(self, entry: OutboxEntry) -> tuple[int, int]:
        return self._plan.rank(entry.entity_kind.value), entry.id

    def give_back(self, entries: Sequence[OutboxEntry]) -> int:
        """Return the claim on ``entries`` still held: due now, the attempt not counted."""
        with unit_of_work(self._sessions) as session:
            return Store(session).outbox.release(
                [e.id for e in entries], worker_id=self.worker_id, now=self._clock()
            )

    def release_stale(self, lease: timedelta) -> int:
        """Return entries whose worker died (claimed longer ago than ``lease``) to pending."""
        now = self._clock()
        with unit_of_work(self._sessions) as session:
            return Store(session).outbox.release_stale(claimed_before=now - lease, now=now)

    def seconds_until_next_due(self) -> float | None:
        """When the soonest pending entry is due (entries others hold are not counted)."""
        with self._sessions() as session:
            soonest = Store(session).outbox.next_due()
        if soonest is None:
            return None
        return max(0.0, (soonest - self._clock()).total_seconds())
