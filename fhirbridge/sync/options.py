"""How the push worker paces itself, and what it reports.

Waiting rules:

- a transient failure (transport, 429, 5xx) backs off exponentially with jitter, honouring the
  server's Retry-After, and gives up (dead letter) after ``max_attempts`` claims;
- a record waiting for another it references (being pushed by another claim, possibly of a
  dead worker) is deferred with a growing delay (``defer_seconds``, doubling, at most a fifth of
  the lease), and becomes a dead letter only after it has waited longer than ``wait_limit``
  (by default the lease plus half a lease, at least a minute more): a dead worker's claim is
  released after one lease, so a record must be able to outwait it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

__all__ = ["PushStats", "WorkerOptions"]


@dataclass(frozen=True)
class WorkerOptions:
    batch_size: int = 200
    max_attempts: int = 12  # transient failures before an entry becomes a dead letter
    backoff_initial: float = 2.0  # seconds
    backoff_max: float = 900.0
    lease: timedelta = timedelta(minutes=5)  # in-flight longer than this: its worker died
    # Batches in flight at once: one is prepared while another is on the wire, so the
    # server and this process work at the same time.
    concurrency: int = 2
    # A record waiting for one it references tries again after this, doubling each time.
    defer_seconds: float = 1.0
    # How long a record may wait for one it references; None: lease + max(lease / 2, 1 min).
    wait_limit: timedelta | None = None
    # Entries per transaction; None: no limit until the server refuses one for its size
    # (then the size that works is learned and kept in the server's profile).
    max_transaction_entries: int | None = None

    def backoff(self, attempts: int) -> float:
        """Seconds before retrying after a transient failure (with jitter)."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)

    def defer_delay(self, attempts: int) -> float:
        """Seconds before a waiting record looks again, after its ``attempts``-th claim."""
        cap = max(self.defer_seconds, self.lease.total_seconds() / 5)
        doubling: float = self.defer_seconds * 2.0 ** min(max(0, attempts - 1), 30)
        return min(cap, doubling)

    @property
    def waiting_limit(self) -> float:
        if self.wait_limit is not None:
            return self.wait_limit.total_seconds()
        lease = self.lease.total_seconds()
        return lease + max(lease / 2, 60.0)


@dataclass
class PushStats:
    pushed: int = 0  # resources written to the server
    # Of those, written without references to records still to come: written again once
    # those are on the server (so pushed - incomplete + unchanged = entries settled).
    incomplete: int = 0
    unchanged: int = 0  # same content hash as the server copy: not sent
    deferred: int = 0  # waiting for a record they reference
    retried: int = 0  # transient failure, back to pending
    dead: int = 0
    conflicts: int = 0
    released: int = 0  # claims given back unpushed (a cancelled batch)
    errors: list[str] = field(default_factory=list)

    def add(self, other: PushStats) -> None:
        names = ("pushed", "incomplete", "unchanged", "deferred", "retried", "dead", "conflicts")
        for name in (*names, "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)

    @property
    def progressed(self) -> bool:
        """Whether the round settled anything (so another round may find more to do)."""
        return bool(self.pushed + self.unchanged + self.dead + self.conflicts)
