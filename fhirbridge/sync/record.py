"""Record: what a push did, in storage (links, content hashes, outbox states).

Rules:

- Every outcome of a claimed entry is recorded in one unit of work per step, and every entry
  leaves ``in_flight``: done, pending again (with a delay) or dead.
- A link is saved with the hash of what the server now holds (see ``links``).
- A record sent without optional references to records still waiting to be pushed is
  completed later: pushed again at once if those records reached the server meanwhile,
  otherwise deferred until they do (and done when they never will). Identical content is
  never sent twice.
- A conditional create that found an older copy with other content links to it and pushes our
  content as an update at once.
- A 412 on an update whose server copy equals our content is our own earlier write whose
  answer was lost: recorded as pushed, and its references still checked as above. Any other
  412 is a conflict kept with both versions, never overwritten.
- Transient failures back off (Retry-After honoured) and give up after ``max_attempts``; a
  waiting record gives up only after ``wait_limit`` (see ``options``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.fhir import TransactionBuilder, TransactionResult
from fhirbridge.persistence import FhirLink, OutboxEntry, Store, SyncTarget, unit_of_work
from fhirbridge.persistence.repositories.outbox import waiting_since
from fhirbridge.persistence.repositories.server_profiles import ServerProfiles
from fhirbridge.sync.links import content_hash, make_link, resolve_placeholders
from fhirbridge.sync.options import PushStats, WorkerOptions
from fhirbridge.sync.prepare import Prepared, Verdict

__all__ = ["Recorder"]


class Recorder:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        worker_id: str,
        options: WorkerOptions,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._worker_id = worker_id
        self._options = options
        self._clock = clock

    # -- decisions made before sending --------------------------------------------------

    def settle(self, verdicts: Sequence[Verdict], stats: PushStats) -> None:
        if not verdicts:
            return
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            for verdict in verdicts:
                if verdict.decision == "unchanged":
                    store.outbox.mark_done(verdict.entry.id)
                    stats.unchanged += 1
                elif verdict.decision == "defer":
                    self._defer(store, verdict.entry, verdict.waiting_for, stats)
                else:
                    self._dead(store, verdict.entry, verdict.reason, None, stats)

    def adopt(self, links: Sequence[FhirLink]) -> None:
        if links:
            with unit_of_work(self._sessions) as session:
                Store(session).fhir_links.upsert_many(links)

    # -- a transaction the server applied -----------------------------------------------

    def pushed(
        self,
        items: Sequence[Prepared],
        results: TransactionResult,
        builder: TransactionBuilder,
        stats: PushStats,
    ) -> None:
        now = self._clock()
        assigned = {
            builder.ref(item.key): result.reference
            for item, result in zip(items, results, strict=True)
            if result.reference
        }
        links: list[FhirLink] = []
        done: list[Prepared] = []
        again: list[Prepared] = []  # content to send once more (an older copy was found)
        follow: list[Prepared] = []  # sent without references still to come
        for item, result in zip(items, results, strict=True):
            # What the server now holds, in the terms the next mapping will produce: its copy
            # of what we sent, with placeholders replaced by server ids.
            if result.resource is None or not result.created:
                item.resource = resolve_placeholders(item.resource, assigned)
                item.hash = content_hash(item.resource)
            else:
                item.hash = content_hash(result.resource)
            server_json = result.resource or {**item.resource, "id": result.id}
            target = item.entry.target
            if item.link is None and not result.created:
                # Only a new record's entry that found the resource already there (a conditional
                # create's match, a PUT to the id derived from the identifier) can hold other
                # content; a created resource's hash is ``item.hash`` already.
                held = content_hash(server_json) if result.resource is not None else item.hash
                if held != item.hash:
                    # An older copy (a lost earlier push, or another system's): link to it
                    # and send our content as an update.
                    links.append(
                        self._link(target, result.id, result.version_id, held, server_json)
                    )
                    again.append(item)
                    continue
            links.append(self._link(target, result.id, result.version_id, item.hash, server_json))
            stats.pushed += 1
            (follow if item.waiting_for else done).append(item)
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            store.fhir_links.upsert_many(links)
            store.outbox.wake([link.target for link in links], now=now)
            store.outbox.mark_done_many([item.entry.id for item in done])
            for item in again:
                self._requeue(store, item.entry, "an older copy is on the server", now)
            for item in follow:
                self._complete_later(store, item.entry, item.waiting_for, stats)

    def lost_write(
        self, item: Prepared, remote: dict[str, Any], version: str | None, stats: PushStats
    ) -> None:
        """A 412 whose server copy is exactly our content: our write made it."""
        assert item.link is not None
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            store.fhir_links.upsert(
                self._link(item.entry.target, item.link.server_id, version, item.hash, remote)
            )
            store.outbox.wake([item.entry.target], now=self._clock())
            stats.pushed += 1
            if item.waiting_for:
                self._complete_later(store, item.entry, item.waiting_for, stats)
            else:
                store.outbox.mark_done(item.entry.id)

    def conflict(self, item: Prepared, remote: dict[str, Any], stats: PushStats) -> None:
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            store.conflicts.record(
                target=item.entry.target,
                reason="version-conflict",
                fields=[],
                local=item.resource,
                remote=remote,
            )
            store.outbox.mark_done(item.entry.id)
            stats.conflicts += 1

    def deleted(self, entry: OutboxEntry, stats: PushStats) -> None:
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            store.fhir_links.delete(entry.target)
            store.outbox.mark_done(entry.id)
            stats.pushed += 1

    def remember_transaction_size(self, base_url: str, entries: int) -> None:
        with unit_of_work(self._sessions) as session:
            ServerProfiles(session).set_max_transaction_entries(base_url, entries)

    # -- failures -----------------------------------------------------------------------

    def dead(
        self,
        entries: Sequence[OutboxEntry],
        why: str,
        outcome: dict[str, Any] | None,
        stats: PushStats,
    ) -> None:
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            for entry in self._held(store, entries):
                self._dead(store, entry, why, outcome, stats)

    def retry_later(
        self,
        entries: Sequence[OutboxEntry],
        exc: BaseException,
        stats: PushStats,
        *,
        may_give_up: bool = True,
    ) -> None:
        """Entries still held go back to pending with backoff (dead after max_attempts)."""
        now = self._clock()
        hinted = getattr(exc, "retry_after", None)
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            for entry in self._held(store, entries):
                if may_give_up and entry.attempts >= self._options.max_attempts:
                    why = f"gave up after {entry.attempts} attempts: {exc}"
                    self._dead(store, entry, why, None, stats)
                    continue
                delay = self._options.backoff(entry.attempts)
                if isinstance(hinted, int | float):
                    delay = max(delay, float(hinted))
                store.outbox.mark_failed(
                    entry.id,
                    transient=True,
                    error=str(exc),
                    retry_at=now + timedelta(seconds=delay),
                    now=now,
                )
                stats.retried += 1
        stats.errors.append(str(exc))

    # -- internals ----------------------------------------------------------------------

    def _held(self, store: Store, entries: Sequence[OutboxEntry]) -> list[OutboxEntry]:
        return store.outbox.held([e.id for e in entries], worker_id=self._worker_id)

    def _link(
        self,
        target: SyncTarget,
        server_id: str | None,
        version: str | None,
        digest: str,
        server_json: dict[str, Any],
    ) -> FhirLink:
        return make_link(
            target,
            server_id=server_id,
            version_id=version,
            digest=digest,
            server_json=server_json,
            synced_at=self._clock(),
        )

    def _complete_later(
        self,
        store: Store,
        entry: OutboxEntry,
        waiting_for: Sequence[SyncTarget],
        stats: PushStats,
    ) -> None:
        """Sent without references to ``waiting_for``: complete it once they exist."""
        if store.fhir_links.get_many(waiting_for):  # on the server meanwhile
            why = f"completing references to {_names(waiting_for)}"
            self._requeue(store, entry, why, self._clock())
            stats.incomplete += 1
        elif store.outbox.waiting(waiting_for):
            self._defer(store, entry, waiting_for, stats)
            stats.incomplete += 1
        else:  # they will never be pushed: the record is complete as it is
            store.outbox.mark_done(entry.id)

    def _requeue(self, store: Store, entry: OutboxEntry, why: str, now: datetime) -> None:
        store.outbox.mark_failed(entry.id, transient=True, error=why, retry_at=now, now=now)

    def _defer(
        self,
        store: Store,
        entry: OutboxEntry,
        waiting_for: Sequence[SyncTarget],
        stats: PushStats,
    ) -> None:
        now = self._clock()
        since = waiting_since(entry) or now
        waited = (now - since).total_seconds()
        if waited >= self._options.waiting_limit:
            why = f"still waiting for {_names(waiting_for)} after {waited:.0f}s"
            self._dead(store, entry, why, None, stats)
            return
        retry_at = now + timedelta(seconds=self._options.defer_delay(entry.attempts))
        store.outbox.defer(
            entry.id, waiting_for=waiting_for, since=since, retry_at=retry_at, now=now
        )
        stats.deferred += 1

    def _dead(
        self,
        store: Store,
        entry: OutboxEntry,
        why: str,
        outcome: dict[str, Any] | None,
        stats: PushStats,
    ) -> None:
        store.outbox.mark_failed(entry.id, transient=False, error=why, outcome=outcome)
        stats.dead += 1
        stats.errors.append(why)


def _names(targets: Sequence[SyncTarget]) -> str:
    return ", ".join(f"{t.entity_kind.value} {t.local_id}" for t in targets)
