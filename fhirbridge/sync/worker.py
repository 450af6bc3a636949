"""The push worker: drains the outbox into the FHIR server, never losing or doubling a record.

One round, each step in a module of its own:

1. ``claim``: claim due outbox entries in a short unit of work of their own (committed, so
   other workers skip them), in push-plan order;
2. ``prepare``: map each record over the server copy we last saw, skip unchanged content,
   check it against the profiles, decide whether it waits for a record it references;
3. ``send``: one transaction Bundle per at most ``max_transaction_entries`` entries (new records
   are conditional creates on their business identifier, or PUTs to an id derived from it where
   the server cannot search identifiers; known ones are PUTs with ``If-Match``);
4. ``record``: server ids, versions and content hashes, outbox states, in one unit of work.

Rules the loop keeps:

- No entry is left ``in_flight`` by an exception: a poison record is a dead letter of its own
  (``prepare``); a transport error, 429 or 5xx puts the batch back with backoff; bad
  credentials put it back and stop the worker loudly (a dead letter per record would bury the
  cause); any other exception puts it back with backoff and is reported; a cancelled batch
  (the other lane failed, Ctrl-C) gives its claim back at once, not counted as an attempt.
- A 4xx refusing a transaction for its size (413, ``too-costly``, "too many entries") makes the
  worker send smaller ones: the size that works is kept for the run and in the server's
  profile, read at the next start. A refusal naming one entry condemns that entry; another
  refusal is narrowed down by halving; only a refused single record becomes a dead letter,
  with the server's OperationOutcome.
- ``drain`` always ends: it returns when nothing is due within ``patience`` (entries held by
  other claims, or waiting longer, are left to the next run or to the lease).
- A crash anywhere is safe: entries claimed by a dead worker are released after the lease and
  the re-push is idempotent (conditional create finds the resource; a 412 whose server copy
  holds exactly our content is our own lost write).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.collector import settle_after_startup
from fhirbridge.fhir import (
    Capabilities,
    FhirClient,
    FhirError,
    Forbidden,
    RateLimited,
    ServerError,
    StatusError,
    TransactionBuilder,
    TransportError,
    Unauthorized,
)
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import OutboxEntry, OutboxOperation, Store
from fhirbridge.persistence.repositories.server_profiles import ServerProfiles
from fhirbridge.sync.claim import Claims
from fhirbridge.sync.links import content_hash
from fhirbridge.sync.options import PushStats, WorkerOptions
from fhirbridge.sync.prepare import Prepared, Preparer
from fhirbridge.sync.record import Recorder
from fhirbridge.sync.send import (
    Sender,
    add_entry,
    groups_of,
    lost_race,
    needs_lookup,
    read_refusal,
)

__all__ = ["PushStats", "SyncWorker", "WorkerOptions", "content_hash"]

log = logging.getLogger(__name__)

# Failures of the server or our credentials, not of the records: the whole batch waits.
_NOT_THE_RECORDS = (Unauthorized, Forbidden, TransportError, RateLimited, ServerError)


class SyncWorker:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        client: FhirClient,
        mappings: Mappings,
        identifier_system: str,
        worker_id: str,
        options: WorkerOptions | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self.worker_id = worker_id
        self.options = options or WorkerOptions()
        self._clock = clock
        self._system = identifier_system
        self._claims = Claims(sessions, worker_id=worker_id, plan=mappings.plan, clock=clock)
        self._preparer = Preparer(sessions, mappings, identifier_system)
        self._sender = Sender(client, identifier_system)
        self._recorder = Recorder(sessions, worker_id=worker_id, options=self.options, clock=clock)
        self._limit: int | None = None
        self._limit_known = False

    @property
    def transaction_limit(self) -> int | None:
        """Entries per transaction this run uses (configured, or learned from the server)."""
        if not self._limit_known:
            with self._sessions() as session:
                profile = ServerProfiles(session).get(self._sender.base_url)
            limits = [
                n
                for n in (
                    self.options.max_transaction_entries,
                    profile.max_transaction_entries if profile else None,
                )
                if n is not None
            ]
            self._limit = min(limits) if limits else None
            self._limit_known = True
        return self._limit

    # -- loop -----------------------------------------------------------------------------

    async def drain(self, *, patience: float = 10.0) -> PushStats:
        """Push until nothing is due within ``patience`` seconds; returns what happened.

        Entries waiting a few seconds (for a record they reference, or after a transient
        failure) are waited for when due within ``patience``; later ones, and entries other
        claims hold, are left to the next run. If one lane fails, the others are cancelled
        (giving their claims back) before the error is raised.
        """
        _freeze_long_lived("start")
        self.release_stale()
        lanes = [
            asyncio.ensure_future(self._drain_lane(patience))
            for _ in range(self.options.concurrency)
        ]
        try:
            results = await asyncio.gather(*lanes)
        except BaseException:
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            raise
        total = PushStats()
        for lane_stats in results:
            total.add(lane_stats)
        return total

    async def _drain_lane(self, patience: float) -> PushStats:
        total = PushStats()
        while True:
            stats = await self.run_once()
            total.add(stats)
            if stats.progressed:
                continue
            wait = self._claims.seconds_until_next_due()
            if wait is None or wait > patience:
                return total
            await asyncio.sleep(max(wait, 0.05))

    def release_stale(self) -> int:
        """Return entries whose worker died (claimed longer ago than the lease) to pending."""
        return self._claims.release_stale(self.options.lease)

    async def run_forever(self, stop: asyncio.Event, *, idle: float = 5.0) -> PushStats:
        _freeze_long_lived("start")
        total = PushStats()
        released_at = self._clock() - self.options.lease
        while not stop.is_set():
            if self._clock() - released_at >= self.options.lease / 2:
                self.release_stale()
                released_at = self._clock()
            stats = await self.run_once()
            total.add(stats)
            if stats.pushed + stats.unchanged == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle)
        return total

    async def run_once(self) -> PushStats:
        """Claim one batch and push it."""
        claimed = self._claims.claim(self.options.batch_size)
        if not claimed:
            return PushStats()
        stats = await self._batch(claimed)
        _freeze_long_lived("first batch")
        return stats

    # -- one batch ------------------------------------------------------------------------

    async def _batch(self, entries: Sequence[OutboxEntry]) -> PushStats:
        stats = PushStats()
        try:
            capabilities = await self._sender.capabilities()
            for entry in entries:
                if entry.operation is OutboxOperation.DELETE:
                    await self._delete(entry, stats)
            upserts = [e for e in entries if e.operation is OutboxOperation.UPSERT]
            await self._adopt_existing(upserts, capabilities)
            for group in self._groups(upserts):
                await self._push_group(group, capabilities, stats)
        except (Unauthorized, Forbidden) as exc:
            # Our credentials, not the records, are wrong: keep every record pending and stop.
            self._recorder.retry_later(entries, exc, stats, may_give_up=False)
            raise
        except FhirError as exc:  # transport, 429, 5xx, a malformed answer: try again later
            self._recorder.retry_later(entries, exc, stats)
        except Exception as exc:
            # The class only: a message or traceback may quote a record's content.
            log.error(
                "push batch of %d entries failed (%s); retried later",
                len(entries),
                type(exc).__name__,
            )
            self._recorder.retry_later(entries, exc, stats)
        except BaseException:  # cancelled: give the claim back at once
            stats.released += self._claims.give_back(entries)
            raise
        return stats

    def _groups(self, entries: Sequence[OutboxEntry]) -> list[list[OutboxEntry]]:
        return groups_of(entries, self.transaction_limit)

    async def _push_group(
        self, entries: Sequence[OutboxEntry], capabilities: Capabilities, stats: PushStats
    ) -> None:
        preparation = self._preparer.prepare(entries, capabilities)
        self._recorder.settle(preparation.verdicts, stats)
        items = preparation.items
        if not items:
            return
        builder = preparation.builder
        for item in items:
            prefix = self._preparer.identifier_prefix(item.entry)
            add_entry(builder, item, identifier_system=self._system, prefix=prefix)
        try:
            results = await self._sender.transaction(builder)
        except _NOT_THE_RECORDS:
            raise
        except StatusError as exc:
            await self._refused(items, builder, exc, capabilities, stats)
            return
        self._recorder.pushed(items, results, builder, stats)

    # -- refusals -------------------------------------------------------------------------

    async def _refused(
        self,
        items: Sequence[Prepared],
        builder: TransactionBuilder,
        exc: StatusError,
        capabilities: Capabilities,
        stats: PushStats,
    ) -> None:
        refusal = read_refusal(exc, items, builder)
        if refusal.kind == "smaller":
            self._learn(refusal.size, len(items))
            for group in self._groups([item.entry for item in items]):
                await self._push_group(group, capabilities, stats)
        elif refusal.kind == "refused":
            await self._refused_one(items[0], exc, stats)
        elif refusal.kind == "named":
            offender = items[refusal.index]
            if lost_race(exc):  # decided on its own, without other entries' placeholders
                await self._push_group([offender.entry], capabilities, stats)
            else:
                self._recorder.dead([offender.entry], _why(offender, exc), _outcome(exc), stats)
            rest = [item.entry for item in items if item is not offender]
            for group in self._groups(rest):
                await self._push_group(group, capabilities, stats)
        else:
            for part in refusal.parts:
                await self._push_group(part, capabilities, stats)

    async def _refused_one(self, item: Prepared, exc: StatusError, stats: PushStats) -> None:
        # Inside a transaction the server reports a failed If-Match as the bundle's 412 (or
        # 409), so the client cannot tell it from an ambiguous conditional create; the entry
        # can: only updates of linked resources carry If-Match.
        if lost_race(exc) and item.link is not None:
            try:
                remote, version = await self._sender.read(
                    item.entry.resource_type, item.link.server_id
                )
            except _NOT_THE_RECORDS:
                raise
            except FhirError as read_error:
                self._recorder.retry_later([item.entry], read_error, stats)
                return
            if content_hash(remote) == item.hash:
                self._recorder.lost_write(item, remote, version, stats)
            else:
                self._recorder.conflict(item, remote, stats)
            return
        self._recorder.dead([item.entry], _why(item, exc), _outcome(exc), stats)

    def _learn(self, smaller: int, refused: int) -> None:
        current = self.transaction_limit
        if current is not None and current <= smaller:
            return
        log.warning(
            "the FHIR server refused a transaction of %d entries for its size; sending at most "
            "%d from now on",
            refused,
            smaller,
        )
        self._limit = smaller
        self._recorder.remember_transaction_size(self._sender.base_url, smaller)

    # -- deletes and adoption -----------------------------------------------------------

    async def _delete(self, entry: OutboxEntry, stats: PushStats) -> None:
        with self._sessions() as session:
            link = Store(session).fhir_links.get(entry.target)
        if link is not None:
            try:
                await self._sender.delete(entry.resource_type, link.server_id)
            except _NOT_THE_RECORDS:
                raise
            except StatusError as exc:
                who = f"{entry.entity_kind.value} {entry.local_id}"
                self._recorder.dead([entry], f"{who}: {exc}", _outcome(exc), stats)
                return
        self._recorder.deleted(entry, stats)

    async def _adopt_existing(
        self, entries: Sequence[OutboxEntry], capabilities: Capabilities
    ) -> None:
        # Most servers create conditionally: then nothing is looked for, and no link read.
        candidates = [e for e in entries if needs_lookup(e, capabilities)]
        if not candidates:
            return
        with self._sessions() as session:
            links = Store(session).fhir_links.get_many(e.target for e in candidates)
        found = await self._sender.find_existing(
            candidates, links, capabilities, self._preparer.identifier_prefix, self._clock()
        )
        self._recorder.adopt(found)


@functools.cache  # once per process and stage
def _freeze_long_lived(stage: str) -> None:
    """Keep the garbage collector's full passes off what lives as long as the process.

    Modules, mapping files, profiles and FHIR model classes are loaded before the worker
    starts and during its first batch (``stage``), and every full collection walked all of
    them again: about a tenth of the worker's CPU per resource. Frozen, they are left out of
    later passes; what later batches allocate is collected as before. Only the young
    generations are collected first (a full pass is what this saves), so garbage already old
    at that moment stays, once per process.
    """
    settle_after_startup(full=False)


def _why(item: Prepared, exc: StatusError) -> str:
    return f"{item.entry.entity_kind.value} {item.entry.local_id}: {exc}"


def _outcome(exc: StatusError) -> dict[str, object] | None:
    return dict(exc.outcome.raw) if exc.outcome is not None else None
