"""The push worker: drains the outbox into the FHIR server, never losing or doubling a record.

One round:

1. claim due outbox entries in a short unit of work of their own (committed, so other workers
   skip them; on PostgreSQL with ``FOR UPDATE SKIP LOCKED``);
2. map each record over the server copy we last saw, skip it when the content hash is unchanged,
   check it against the profiles (a resource that fails is never sent, it goes to the dead
   letters with the findings), and put it in one transaction Bundle in dependency order:
   new records are conditional creates on their business identifier (or PUTs to an id derived
   from it where the server cannot search identifiers), known ones are PUTs with ``If-Match``;
3. send it; on success record server ids, versions and hashes and mark the entries done, in one
   unit of work.

Failures: transport errors, 429 and 5xx leave the entries pending with exponential backoff (and
the server's Retry-After); a 4xx refuses the whole transaction, so the batch is split and
retried record by record until the offender is found, which goes to the dead letters with the
server's OperationOutcome while the others go through. A 412 on an update is a conflict: kept
with both versions for a person or a rule to resolve, never overwritten.

A crash anywhere is safe: entries claimed by a dead worker are released after a lease, and the
re-push is idempotent (conditional create finds the resource; a 412 whose server copy already
holds exactly our content is recognised as our own lost write).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.conformance import NonConformantResource, ensure_conformant
from fhirbridge.fhir import (
    Capabilities,
    FhirClient,
    FhirError,
    Forbidden,
    RateLimited,
    ServerError,
    StatusError,
    Support,
    TransactionBuilder,
    TransportError,
    Unauthorized,
    VersionConflict,
    apply_transaction,
)
from fhirbridge.mapping.context import MappingContext, MappingError
from fhirbridge.mapping.loader import Mappings
from fhirbridge.mapping.references import PRIMARY_RESOURCE
from fhirbridge.persistence import (
    EntityKind,
    FhirLink,
    OutboxEntry,
    OutboxOperation,
    Store,
    SyncTarget,
    unit_of_work,
)
from fhirbridge.sync.push import PUSH_ORDER, client_assigned_id
from fhirbridge.sync.references import LinkReferences, UnresolvedReference

__all__ = ["PushStats", "SyncWorker", "WorkerOptions", "content_hash"]


def content_hash(resource: dict[str, Any]) -> str:
    """What the resource says, ignoring what the server stamps on it (id, meta)."""
    body = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


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
    # A record waiting for one it references (being pushed by another batch) tries again soon.
    defer_seconds: float = 1.0


@dataclass
class PushStats:
    pushed: int = 0
    unchanged: int = 0  # same content hash as the server copy: not sent
    deferred: int = 0  # waiting for a record they reference
    retried: int = 0  # transient failure, back to pending
    dead: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: PushStats) -> None:
        for name in ("pushed", "unchanged", "deferred", "retried", "dead", "conflicts"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


@dataclass
class _Prepared:
    entry: OutboxEntry
    resource: dict[str, Any]
    hash: str
    link: FhirLink | None
    key: str
    literal_id: str | None = None  # client-assigned id (server cannot search identifiers)
    # Records it references that have no server id yet: sent without those references.
    waiting_for: tuple[SyncTarget, ...] = ()


class _BatchReferences(LinkReferences):
    """Records created in this batch are referenced through the bundle's placeholders."""

    def __init__(
        self,
        store: Store,
        builder: TransactionBuilder,
        in_batch: dict[str, str],
        links: dict[SyncTarget, FhirLink],
    ):
        super().__init__(store, known=links.values())
        self._builder = builder
        self._in_batch = in_batch  # "concept/local id" -> entry key or literal "Type/id"
        # Of the record being mapped: records it references that have no server id yet.
        self.missing: list[SyncTarget] = []

    def reference(self, concept: str, local_id: str) -> str:
        # Records of this batch first: their placeholder (or server id) is already known, and
        # asking storage about each of them would cost a query per reference.
        key = self._in_batch.get(f"{concept}/{local_id}")
        if key is not None:
            return self._builder.ref(key) if key.startswith("k:") else key
        try:
            return super().reference(concept, local_id)
        except UnresolvedReference:
            resource_type = PRIMARY_RESOURCE.get(concept)
            if resource_type is not None:  # a staff member without a Practitioner never will
                self.missing.append(SyncTarget(EntityKind(concept), local_id, resource_type))
            raise


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
        self._client = client
        self._mappings = mappings
        self._system = identifier_system
        self.worker_id = worker_id
        self.options = options or WorkerOptions()
        self._clock = clock

    # -- loop -----------------------------------------------------------------------------

    async def drain(self, *, patience: float = 10.0) -> PushStats:
        """Push until nothing is due; returns what happened.

        Entries waiting a few seconds (for a record they reference, or after a transient
        failure) are waited for when due within ``patience`` seconds; later ones are left to the
        next run.
        """
        self.release_stale()
        totals = await asyncio.gather(
            *(self._drain_lane(patience) for _ in range(self.options.concurrency))
        )
        total = PushStats()
        for lane in totals:
            total.add(lane)
        return total

    async def _drain_lane(self, patience: float) -> PushStats:
        total = PushStats()
        while True:
            stats = await self.run_once()
            total.add(stats)
            if stats.pushed + stats.unchanged + stats.dead + stats.conflicts:
                continue
            wait = self._seconds_until_next_due()
            if wait is None or wait > patience:
                return total
            await asyncio.sleep(wait)

    def release_stale(self) -> int:
        """Return entries whose worker died (claimed longer ago than the lease) to pending."""
        now = self._clock()
        with unit_of_work(self._sessions) as session:
            return Store(session).outbox.release_stale(
                claimed_before=now - self.options.lease, now=now
            )

    def _seconds_until_next_due(self) -> float | None:
        with self._sessions() as session:
            soonest = Store(session).outbox.next_due()
        if soonest is None:
            return None
        return max(0.0, (soonest - self._clock()).total_seconds())

    async def run_forever(self, stop: asyncio.Event, *, idle: float = 5.0) -> PushStats:
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
        now = self._clock()
        with unit_of_work(self._sessions) as session:
            claimed = Store(session).outbox.claim(
                batch_size=self.options.batch_size, worker_id=self.worker_id, now=now
            )
        if not claimed:
            return PushStats()
        claimed.sort(key=_push_rank)
        return await self._push(claimed)

    # -- one batch ------------------------------------------------------------------------

    async def _push(self, entries: Sequence[OutboxEntry]) -> PushStats:
        stats = PushStats()
        capabilities = await self._capabilities(entries, stats)
        if capabilities is None:
            return stats
        builder = TransactionBuilder()
        prepared: list[_Prepared] = []
        try:
            await self._adopt_existing(entries, capabilities)
        except (TransportError, RateLimited, ServerError) as exc:
            self._retry_later(entries, exc, stats)
            return stats
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            links = store.fhir_links.get_many(e.target for e in entries)
            records = _records(store, entries)
            placeholders = {
                e.target: self._placeholder(e, links.get(e.target), capabilities) for e in entries
            }
            in_batch = {
                f"{e.entity_kind.value}/{e.local_id}": placeholders[e.target]
                for e in entries
                if e.resource_type == PRIMARY_RESOURCE.get(e.entity_kind.value)
            }
            refs = _BatchReferences(store, builder, in_batch, links)
            for entry in entries:
                if entry.operation is OutboxOperation.DELETE:
                    await self._delete(store, entry, stats)
                    continue
                record = records.get((entry.entity_kind, entry.local_id))
                link = links.get(entry.target)
                placeholder = placeholders[entry.target]
                item = self._prepare(store, entry, record, link, refs, placeholder, stats)
                if item is not None:
                    prepared.append(item)
        if not prepared:
            return stats
        for item in prepared:
            self._add(builder, item)
        try:
            results = await apply_transaction(self._client, builder)
        except (TransportError, RateLimited, ServerError) as exc:
            self._retry_later([p.entry for p in prepared], exc, stats)
            return stats
        except (Unauthorized, Forbidden) as exc:
            # Our credentials, not the records, are wrong: keep every record pending and stop
            # so that a person sees it (a dead letter per record would bury the cause).
            self._retry_later([p.entry for p in prepared], exc, stats, may_give_up=False)
            raise
        except StatusError as exc:
            if len(prepared) == 1:
                await self._refused(prepared[0], exc, stats)
                return stats
            # The server refused the whole transaction; find the offender record by record
            # (and, within one record's resources, entry by entry) so the rest goes through.
            groups = _by_record(prepared)
            parts = groups if len(groups) > 1 else [[item] for item in prepared]
            for part in parts:
                stats.add(await self._push([p.entry for p in part]))
            return stats
        assigned = {
            builder.ref(item.key): result.reference
            for item, result in zip(prepared, results, strict=True)
            if result.reference
        }
        new_links: list[FhirLink] = []
        again: list[SyncTarget] = []
        for item, result in zip(prepared, results, strict=True):
            # What the server now holds, in the terms the next mapping will produce: its copy
            # of what we sent, with placeholders replaced by server ids.
            if result.resource is None or not result.created:
                item.resource = _resolve_placeholders(item.resource, assigned)
                item.hash = content_hash(item.resource)
            else:
                item.hash = content_hash(result.resource)
            server_json = result.resource or {**item.resource, "id": result.id}
            if not result.created and content_hash(server_json) != item.hash:
                # A conditional create found an older copy (a lost earlier push, or another
                # system's): link to it and send our content as an update next round.
                new_links.append(self._link(item, result.id, result.version_id, None, server_json))
                again.append(item.entry.target)
                continue
            digest = None if item.waiting_for else item.hash
            new_links.append(self._link(item, result.id, result.version_id, digest, server_json))
            if item.waiting_for:
                again.append(item.entry.target)
            stats.pushed += 1
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            store.fhir_links.upsert_many(new_links)
            store.outbox.mark_done_many([item.entry.id for item in prepared])
            waiting = {item.entry.target: item.waiting_for for item in prepared}
            for target in again:
                # Push it again only once what it references is on its way; a reference to a
                # record that will never be pushed must not make it go round for ever.
                targets = waiting[target]
                if (
                    not targets
                    or store.outbox.any_waiting(targets)
                    or store.fhir_links.get_many(targets)  # pushed meanwhile by another batch
                ):
                    store.outbox.enqueue(target, now=self._clock())
        return stats

    async def _capabilities(
        self, entries: Sequence[OutboxEntry], stats: PushStats
    ) -> Capabilities | None:
        try:
            return await self._client.capabilities()
        except (Unauthorized, Forbidden) as exc:
            self._retry_later(entries, exc, stats, may_give_up=False)
            raise
        except FhirError as exc:
            self._retry_later(entries, exc, stats)
            return None

    def _prepare(
        self,
        store: Store,
        entry: OutboxEntry,
        record: Any,
        link: FhirLink | None,
        refs: _BatchReferences,
        placeholder: str,
        stats: PushStats,
    ) -> _Prepared | None:
        if record is None:
            self._dead(store, entry, "the record no longer exists", None, stats)
            return None
        mapping = self._mappings.get(entry.entity_kind.value, entry.resource_type)
        ctx = MappingContext(self._system, refs, self._mappings.terminology)
        refs.missing.clear()
        try:
            resource = mapping.to_fhir(record, ctx, base=link.server_json if link else None)
        except MappingError as exc:
            self._dead(store, entry, str(exc), None, stats)
            return None
        _strip_server_meta(resource)
        # Only a known resource can be unchanged; for a new one the hash is taken from what
        # the server returns.
        digest = content_hash(resource) if link is not None else ""
        if link is not None and link.content_hash == digest and not refs.missing:
            store.outbox.mark_done(entry.id)
            stats.unchanged += 1
            return None
        try:
            ensure_conformant(resource)
        except NonConformantResource as exc:
            if refs.missing:
                # A reference the profile requires is not pushed yet: wait for it.
                names = ", ".join(f"{t.entity_kind.value} {t.local_id}" for t in refs.missing)
                self._defer(store, entry, f"waiting for {names}", stats)
            else:
                self._dead(store, entry, str(exc), None, stats)
            return None
        literal = None if placeholder.startswith("k:") or link is not None else placeholder
        # Optional references to records not pushed yet are left out (that is how cycles such
        # as CarePlan.activity <-> ServiceRequest.basedOn resolve); the record goes again once
        # they exist.
        waiting = tuple(refs.missing)
        return _Prepared(entry, resource, digest, link, _entry_key(entry), literal, waiting)

    async def _adopt_existing(
        self, entries: Sequence[OutboxEntry], capabilities: Capabilities
    ) -> None:
        """Where the server can search identifiers but not create conditionally, look before
        creating: a record already there (a lost earlier push) is linked, so it is updated,
        not created twice."""
        unlinked = [e for e in entries if e.operation is OutboxOperation.UPSERT]
        with self._sessions() as session:
            links = Store(session).fhir_links.get_many(e.target for e in unlinked)
        found: list[FhirLink] = []
        for entry in unlinked:
            if entry.target in links:
                continue
            rtype = entry.resource_type
            if capabilities.supports_conditional_create(rtype) is not Support.UNSUPPORTED:
                continue
            if capabilities.supports_search_param(rtype, "identifier") is not Support.SUPPORTED:
                continue
            identifier = f"{self._system}|{self._prefix(entry)}/{entry.local_id}"
            bundle = await self._client.search_bundle(rtype, {"identifier": identifier})
            matches = [e["resource"] for e in bundle.get("entry") or [] if "resource" in e]
            if len(matches) == 1:
                resource = matches[0]
                found.append(
                    FhirLink(
                        entity_kind=entry.entity_kind,
                        local_id=entry.local_id,
                        resource_type=rtype,
                        server_id=str(resource["id"]),
                        synced_at=self._clock(),
                        version_id=(resource.get("meta") or {}).get("versionId"),
                        server_json=resource,
                    )
                )
        if found:
            with unit_of_work(self._sessions) as session:
                Store(session).fhir_links.upsert_many(found)

    def _placeholder(
        self, entry: OutboxEntry, link: FhirLink | None, capabilities: Capabilities
    ) -> str:
        """How other entries of the batch refer to this one: a builder key or "Type/id"."""
        if link is not None:
            return f"{entry.resource_type}/{link.server_id}"
        if capabilities.supports_search_param(entry.resource_type, "identifier") is not (
            Support.SUPPORTED
        ):
            key = f"{entry.resource_type}/{self._prefix(entry)}/{entry.local_id}"
            return f"{entry.resource_type}/{client_assigned_id(self._system, key)}"
        return _entry_key(entry)

    def _prefix(self, entry: OutboxEntry) -> str:
        return self._mappings.get(entry.entity_kind.value, entry.resource_type).identifier_prefix

    def _add(self, builder: TransactionBuilder, item: _Prepared) -> None:
        entry = item.entry
        if item.link is not None:
            resource = {**item.resource, "id": item.link.server_id}
            version = item.link.version_id
            builder.update(resource, key=item.key, if_match=f'W/"{version}"' if version else None)
        elif item.literal_id is not None:
            builder.update({**item.resource, "id": item.literal_id.split("/", 1)[1]}, key=item.key)
        else:
            value = f"{self._prefix(entry)}/{entry.local_id}"
            builder.create(
                item.resource,
                key=item.key,
                if_none_exist={"identifier": f"{self._system}|{value}"},
            )

    # -- outcomes -------------------------------------------------------------------------

    def _link(
        self,
        item: _Prepared,
        server_id: str | None,
        version: str | None,
        digest: str | None,
        server_json: dict[str, Any],
    ) -> FhirLink:
        if server_id is None:
            raise ValueError(f"server gave no id for {item.key}")
        return FhirLink(
            entity_kind=item.entry.entity_kind,
            local_id=item.entry.local_id,
            resource_type=item.entry.resource_type,
            server_id=server_id,
            synced_at=self._clock(),
            version_id=version,
            content_hash=digest,
            server_json=server_json,
        )

    async def _refused(self, item: _Prepared, exc: StatusError, stats: PushStats) -> None:
        outcome = dict(exc.outcome.raw) if exc.outcome else None
        # Inside a transaction the server reports a failed If-Match as the bundle's 412 (or
        # 409), so the client cannot tell it from an ambiguous conditional create; the entry
        # can: only updates of linked resources carry If-Match.
        lost_race = isinstance(exc, VersionConflict) or exc.status in (409, 412)
        if lost_race and item.link is not None:
            await self._version_conflict(item, stats)
            return
        with unit_of_work(self._sessions) as session:
            self._dead(Store(session), item.entry, str(exc), outcome, stats)

    async def _version_conflict(self, item: _Prepared, stats: PushStats) -> None:
        assert item.link is not None
        try:
            current = await self._client.read(item.entry.resource_type, item.link.server_id)
        except FhirError as read_error:
            self._retry_later([item.entry], read_error, stats)
            return
        remote = current.resource or {}
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            if content_hash(remote) == item.hash:
                # Our own earlier write whose response was lost: the server already has it.
                link = self._link(item, item.link.server_id, current.version_id, item.hash, remote)
                store.fhir_links.upsert(link)
                store.outbox.mark_done(item.entry.id)
                stats.pushed += 1
                return
            store.conflicts.record(
                target=item.entry.target,
                reason="version-conflict",
                fields=[],
                local=item.resource,
                remote=remote,
            )
            store.outbox.mark_done(item.entry.id)
            stats.conflicts += 1

    def _retry_later(
        self,
        entries: Sequence[OutboxEntry],
        exc: Exception,
        stats: PushStats,
        *,
        may_give_up: bool = True,
    ) -> None:
        now = self._clock()
        hinted = getattr(exc, "retry_after", None)
        with unit_of_work(self._sessions) as session:
            store = Store(session)
            for entry in entries:
                if may_give_up and entry.attempts >= self.options.max_attempts:
                    self._dead(
                        store, entry, f"gave up after {entry.attempts} attempts: {exc}", None, stats
                    )
                    continue
                delay = self._backoff(entry.attempts)
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

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self.options.backoff_max, self.options.backoff_initial * 2 ** (attempts - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _defer(self, store: Store, entry: OutboxEntry, why: str, stats: PushStats) -> None:
        if entry.attempts >= self.options.max_attempts:
            self._dead(store, entry, f"still {why} after {entry.attempts} attempts", None, stats)
            return
        retry_at = self._clock() + timedelta(seconds=self.options.defer_seconds)
        store.outbox.mark_failed(entry.id, transient=True, error=why, retry_at=retry_at)
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

    async def _delete(self, store: Store, entry: OutboxEntry, stats: PushStats) -> None:
        link = store.fhir_links.get(entry.target)
        if link is not None:
            try:
                await self._client.delete(entry.resource_type, link.server_id)
            except (TransportError, RateLimited, ServerError) as exc:
                self._retry_later([entry], exc, stats)
                return
            except StatusError as exc:
                self._dead(store, entry, str(exc), None, stats)
                return
            store.fhir_links.delete(entry.target)
        store.outbox.mark_done(entry.id)
        stats.pushed += 1


def _records(store: Store, entries: Sequence[OutboxEntry]) -> dict[tuple[Any, str], Any]:
    ids: dict[Any, set[str]] = {}
    for entry in entries:
        ids.setdefault(entry.entity_kind, set()).add(entry.local_id)
    return {
        (kind, local_id): record
        for kind, wanted in ids.items()
        for local_id, record in store.repository(kind).get_many(wanted).items()
    }


def _push_rank(entry: OutboxEntry) -> tuple[int, int]:
    concept = entry.entity_kind.value
    rank = PUSH_ORDER.index(concept) if concept in PUSH_ORDER else len(PUSH_ORDER)
    return rank, entry.id


def _entry_key(entry: OutboxEntry) -> str:
    return f"k:{entry.entity_kind.value}/{entry.local_id}/{entry.resource_type}"


def _strip_server_meta(resource: dict[str, Any]) -> None:
    meta = resource.get("meta")
    if isinstance(meta, dict):
        for stamp in ("versionId", "lastUpdated"):
            meta.pop(stamp, None)
        if not meta:
            resource.pop("meta")


def _resolve_placeholders(node: Any, placeholders: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _resolve_placeholders(v, placeholders) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_placeholders(v, placeholders) for v in node]
    if isinstance(node, str) and node.startswith("urn:uuid:"):
        return placeholders.get(node, node)
    return node


def _by_record(items: Sequence[_Prepared]) -> list[list[_Prepared]]:
    groups: dict[tuple[str, str], list[_Prepared]] = {}
    for item in items:
        groups.setdefault((item.entry.entity_kind.value, item.entry.local_id), []).append(item)
    return list(groups.values())
