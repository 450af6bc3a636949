"""Pull: bring changes other systems made on the FHIR server into our records.

For each resource type, search ``_lastUpdated=gt<cursor>`` sorted by ``_lastUpdated`` and page
through the results lazily. Each resource goes through ``receive_resources``, which
subscription notifications share:

* **Ours?** A resource is ours when its server id is in ``fhir_links`` or it carries our
  business identifier (system = the installation's, value = ``<prefix>/<local id>`` of a
  mapping of that resource type). Anything else is left alone.
* **Echo?** When the link already holds the resource's ``meta.versionId`` it is our own write
  (or a change already pulled) coming back: nothing to do.
* **What changed?** The resource is read with the mapping (``from_fhir``) and compared with the
  local record field by field, for the fields that mapping owns.
* **Who decides?** Changed fields the mapping marks ``owner: remote`` (a referral Task's status,
  reason, owner and outputs belong to the performer) are applied. A changed field fhirbridge
  owns is applied too, *unless we changed the record as well*: a pending or in-flight outbox
  entry for that resource, or a conflict still open for it. Then it is a ``concurrent-edit``
  conflict, kept with both versions and not applied. When the link holds the server copy our
  last sync was based on, the comparison is three-way: a field only the server changed is
  applied even then, and only fields both sides changed are disputed. The rule for "nobody
  changed it here": the server copy is newer than anything we hold, so it wins.
* **Allowed?** Inbound guards (``PullHooks.guards``, supplied by the service layer: the
  referral service checks Gravity Task moves) judge each change before it is applied, with the
  local record before it, the record as it would be saved, the resource, and when a guard asks
  for it the *path*: the versions the server made between the one we hold and this one, read
  from the instance ``_history`` (found by version id equality, oldest first by
  ``meta.lastUpdated``; version ids are opaque and never counted or compared as numbers). The
  path is ``None`` when the server cannot tell: its CapabilityStatement lists the type without
  ``history-instance``, it answers 404/405/410/501, or its history no longer holds the version
  we hold. A guard that refuses names its reason; the change becomes an ``invalid-transition``
  conflict and nothing of that version is applied.
* **Stale?** A resource whose ``meta.lastUpdated`` is older than the server copy we hold (a late
  notification) is skipped; version ids say nothing about order.

Applied changes are saved without an outbox entry for the resource they came from (the server
already has them); another resource of the same record that carries a changed field (a
referral's ServiceRequest and Task share priority) is queued for pushing. The link then moves
to the server's version, content hash and JSON, so the next push is based on it. While a
conflict is open the link stays where it was: a push based on it is refused with 412 rather
than overwriting what the other side wrote.

**Extension points** (``PullHooks``, passed to ``pull_changes``, ``receive_resources`` and
``fhirbridge.sync.notifications.apply_notification``): ``guards`` as above, and
``after_apply(store, before, after)``, called for every applied change with the local record
before and after it, in the same unit of work: whatever it saves (and queues for pushing)
commits or rolls back together with the change. The service layer uses them for referrals
(``fhirbridge.services.referral.referral_pull_hooks``); sync itself knows nothing of what they
do, so the dependency points from services to sync, never back. Changes held back (conflicts,
refused changes) are not passed to ``after_apply``. ``not_ours(store, resource)`` sees each
resource that is not ours, in the page's unit of work; when it answers True (the transitional
care service opened a TCM period from a discharge Encounter) the result is ``handled``.

The cursor of each page is saved in the unit of work of that page's changes. Search pages
that are not sorted by ``_lastUpdated`` (the server ignored ``_sort``) only move the cursor
at the end of the type. Servers page by offset; when a resource seen earlier in the pull
shows up again, or the total drops, the pages have shifted under us and the type is searched
again from the last safe cursor, so nothing is skipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.fhir import FhirClient, FhirError, Gone, NotFound, StatusError, Support
from fhirbridge.mapping.context import MappingContext, MappingError
from fhirbridge.mapping.engine import ResourceMapping, apply_resource
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import (
    ConflictReason,
    EntityKind,
    FhirLink,
    OutboxState,
    Store,
    SyncTarget,
    unit_of_work,
)
from fhirbridge.sync.links import content_hash
from fhirbridge.sync.references import LinkReferences

__all__ = [
    "MIN_TASK_PULL_INTERVAL",
    "AfterApply",
    "InboundChange",
    "InboundGuard",
    "InboundOutcome",
    "InboundResult",
    "NotOurs",
    "PullHooks",
    "PullIntervalTooShort",
    "PullReport",
    "PullSchedule",
    "cursor_key",
    "last_pull_key",
    "pull_changes",
    "receive_resources",
]

Clock = Callable[[], datetime]
Sessions = sessionmaker[Session]
# (store, record before, record after) of an applied inbound change; see the module doc.
AfterApply = Callable[[Store, Any, Any], None]
# (store, resource) of a resource that is not ours: True when the service layer took it (a
# discharge Encounter opening a TCM period), in the same unit of work; see the module doc.
NotOurs = Callable[[Store, Mapping[str, Any]], bool]

# Gravity SDOH CC: "systems SHALL NOT poll for Task updates more often than every 15 minutes".
MIN_TASK_PULL_INTERVAL = timedelta(minutes=15)
DEFAULT_PULL_INTERVAL = timedelta(minutes=60)
_MAX_RESTARTS = 3  # shifted pages: search again at most this often, then wait for next pull
# Answers of a server that keeps no history for a resource (or will not show it).
_NO_HISTORY_STATUSES = frozenset({404, 405, 410, 501})


@dataclass(frozen=True)
class InboundChange:
    """One inbound change as a guard sees it, before anything is saved."""

    store: Store
    before: Any  # the local record
    after: Any  # the record as it would be saved
    resource: Mapping[str, Any]  # the server's version
    changed: tuple[str, ...]  # domain fields that differ between before and the server's version
    # The records the server's versions between the one we hold and this one read as, oldest
    # first; () when none or no guard asked for them; None when the server cannot tell.
    path: tuple[Any, ...] | None = ()


class InboundGuard(Protocol):
    """A rule an inbound change must pass before it is applied (see module doc)."""

    def wants_path(self, before: Any, after: Any) -> bool:
        """Whether judging this change needs the versions the server made in between (read
        from the server's history before the change is judged)."""
        ...

    def refusal(self, change: InboundChange) -> str | None:
        """None to let the change through, else why it is refused."""
        ...


@dataclass(frozen=True)
class PullHooks:
    """What the service layer adds to the generic pull (see module doc)."""

    guards: tuple[InboundGuard, ...] = ()
    after_apply: AfterApply | None = None
    not_ours: NotOurs | None = None


class PullIntervalTooShort(ValueError):
    def __init__(self, resource_type: str, interval: timedelta, minimum: timedelta) -> None:
        self.resource_type = resource_type
        self.interval = interval
        self.minimum = minimum
        super().__init__(
            f"pulling {resource_type} every {_minutes(interval)} is too often: the Gravity SDOH"
            f" IG asks for at least {_minutes(minimum)} between polls (subscribe instead)"
        )


def _minutes(interval: timedelta) -> str:
    return f"{interval.total_seconds() / 60:g} minutes"


@dataclass(frozen=True)
class PullSchedule:
    """How often to pull; refuses intervals the implementation guides forbid."""

    interval: timedelta = DEFAULT_PULL_INTERVAL
    resource_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0):
            raise ValueError("the pull interval must be positive")
        if "Task" in self.resource_types and self.interval < MIN_TASK_PULL_INTERVAL:
            raise PullIntervalTooShort("Task", self.interval, MIN_TASK_PULL_INTERVAL)

    def next_pull(self, last_pull: datetime | None) -> datetime | None:
        """When the next pull is due; ``None`` means now (never pulled)."""
        return None if last_pull is None else last_pull + self.interval

    def is_due(self, *, last_pull: datetime | None, now: datetime) -> bool:
        due = self.next_pull(last_pull)
        return due is None or now >= due


class InboundOutcome(StrEnum):
    NOT_OURS = "not-ours"  # neither linked nor carrying our identifier
    ECHO = "echo"  # the version we already hold (our own write coming back)
    STALE = "stale"  # older than the version we hold (a late notification)
    UNCHANGED = "unchanged"  # a new version, but nothing we map differs
    APPLIED = "applied"
    CONFLICT = "conflict"  # both sides changed a field we own; kept, not applied
    INVALID_TRANSITION = "invalid-transition"  # the Task machine forbids it; kept, not applied
    NO_LOCAL_RECORD = "no-local-record"  # our identifier, but no such record here
    UNREADABLE = "unreadable"  # the mapping cannot read it (e.g. an unknown code)
    HANDLED = "handled"  # not ours, but the not_ours hook took it (a discharge opened TCM)


@dataclass(frozen=True)
class InboundResult:
    reference: str  # "Task/123" on the server
    outcome: InboundOutcome
    target: SyncTarget | None = None
    applied: tuple[str, ...] = ()  # domain fields taken from the server
    disputed: tuple[str, ...] = ()  # domain fields held back in a conflict
    conflict_id: int | None = None
    error: str | None = None  # why a resource was unreadable (names element, never values)


@dataclass
class PullReport:
    started_at: datetime
    results: list[InboundResult] = field(default_factory=list)
    pages: int = 0
    restarts: int = 0  # pages shifted during the pull and a type was searched again
    cursors: dict[str, str] = field(default_factory=dict)  # resource type -> cursor now

    @property
    def fetched(self) -> int:
        return len(self.results)

    def with_outcome(self, outcome: InboundOutcome) -> list[InboundResult]:
        return [r for r in self.results if r.outcome is outcome]

    @property
    def applied(self) -> list[InboundResult]:
        return self.with_outcome(InboundOutcome.APPLIED)

    @property
    def conflict_ids(self) -> list[int]:
        return [r.conflict_id for r in self.results if r.conflict_id is not None]


def cursor_key(base_url: str, resource_type: str) -> str:
    return f"pull|{base_url.rstrip('/')}|{resource_type}|lastUpdated"


def last_pull_key(base_url: str) -> str:
    """The cursor holding when the last complete pull from ``base_url`` started."""
    return f"pull|{base_url.rstrip('/')}|last-pull"


# -- pull ----------------------------------------------------------------------------------


async def pull_changes(
    *,
    client: FhirClient,
    sessions: Sessions,
    mappings: Mappings,
    identifier_system: str,
    resource_types: Sequence[str],
    now: Clock,
    page_size: int = 100,
    hooks: PullHooks | None = None,
) -> PullReport:
    """Fetch what changed on the server since the last pull and apply it (see module doc)."""
    unmapped = [t for t in resource_types if not any(m.resource == t for m in mappings.resources)]
    if unmapped:
        raise ValueError(f"no mapping reads {', '.join(unmapped)}; nothing to pull them into")
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    report = PullReport(started_at=now())
    receiver = _Receiver(
        client=client,
        mappings=mappings,
        identifier_system=identifier_system,
        now=now,
        hooks=hooks or PullHooks(),
    )
    for resource_type in resource_types:
        await _pull_type(client, sessions, receiver, resource_type, page_size, report)
    with unit_of_work(sessions) as session:
        Store(session, clock=now).cursors.set(
            last_pull_key(client.base_url), report.started_at.isoformat()
        )
    return report


async def _pull_type(
    client: FhirClient,
    sessions: Sessions,
    receiver: _Receiver,
    resource_type: str,
    page_size: int,
    report: PullReport,
) -> None:
    key = cursor_key(client.base_url, resource_type)
    with unit_of_work(sessions) as session:
        since = Store(session).cursors.get(key)
    for attempt in range(_MAX_RESTARTS + 1):
        pass_ = _Pass(key=key, checkpoint=since)
        complete = await pass_.run(client, sessions, receiver, resource_type, page_size, report)
        since = pass_.checkpoint
        if complete:
            break
        report.restarts += 1
        if attempt == _MAX_RESTARTS:
            break  # the cursor stays at the last safe point; the next pull resumes there
    if since is not None:
        report.cursors[resource_type] = since


class PageReceiver(Protocol):
    """Applies one page of a search, saving ``cursor`` (key, value) in the same unit of work:
    the pull's ``_Receiver``, or ``sync.readings``' for device readings."""

    async def receive(
        self,
        sessions: Sessions,
        resources: list[dict[str, Any]],
        *,
        cursor: tuple[str, str] | None,
    ) -> list[InboundResult]: ...


@dataclass
class _Pass:
    """One search of a resource type from ``checkpoint``, page by page (``extra``: more
    search parameters, e.g. a device-reading pull's ``patient`` and ``code``)."""

    key: str
    checkpoint: str | None
    seen: set[str] = field(default_factory=set)
    stamps: list[tuple[datetime, str]] = field(default_factory=list)
    total: int | None = None
    sorted_by_server: bool = True
    extra: tuple[tuple[str, str], ...] = ()

    async def run(
        self,
        client: FhirClient,
        sessions: Sessions,
        receiver: PageReceiver,
        resource_type: str,
        page_size: int,
        report: PullReport,
    ) -> bool:
        """False when the pages shifted under us and the type must be searched again."""
        params: list[tuple[str, str]] = []
        if self.checkpoint is not None:
            params.append(("_lastUpdated", f"gt{self.checkpoint}"))
        params += [("_sort", "_lastUpdated"), ("_count", str(page_size))]
        params += self.extra
        pages = client.search_pages(resource_type, params)
        try:
            async for page in pages:
                resources = _matches(page)
                if self._shifted(page, resources):
                    return False
                report.pages += 1
                has_next = _link(page, "next") is not None
                self._observe(page, resources)
                checkpoint = self._safe_checkpoint(resources, has_next=has_next)
                moved = checkpoint is not None and checkpoint != self.checkpoint
                cursor = (self.key, checkpoint) if moved and checkpoint else None
                report.results += await receiver.receive(sessions, resources, cursor=cursor)
                self.checkpoint = checkpoint
        finally:
            await pages.aclose()
        return True

    def _shifted(self, page: Mapping[str, Any], resources: list[dict[str, Any]]) -> bool:
        total = page.get("total")
        if isinstance(total, int) and self.total is not None and total < self.total:
            return True
        return any(_key(r) in self.seen for r in resources)

    def _observe(self, page: Mapping[str, Any], resources: list[dict[str, Any]]) -> None:
        total = page.get("total")
        if isinstance(total, int):
            self.total = total
        if not _sorted_by_last_updated(page):
            self.sorted_by_server = False
        for resource in resources:
            self.seen.add(_key(resource))
            stamp = _last_updated(resource)
            if stamp is None:
                continue
            if self.stamps and stamp[0] < self.stamps[-1][0]:
                self.sorted_by_server = False  # the server says sorted; the order says not
            self.stamps.append(stamp)

    def _safe_checkpoint(self, resources: list[dict[str, Any]], *, has_next: bool) -> str | None:
        """The newest ``_lastUpdated`` below which every resource has been seen."""
        if not self.stamps:
            return self.checkpoint
        if not has_next:
            return max(self.stamps)[1]
        if not self.sorted_by_server:
            return self.checkpoint
        # Resources sharing the page's last instant may continue on the next page: stop
        # just below it, so a crash before that page re-reads them instead of skipping them.
        page_last = max(s for r in resources if (s := _last_updated(r)) is not None)
        below = [s for s in self.stamps if s[0] < page_last[0]]
        return max(below)[1] if below else self.checkpoint


def _matches(page: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for entry in page.get("entry") or []:
        mode = (entry.get("search") or {}).get("mode", "match")
        resource = entry.get("resource")
        if mode == "match" and isinstance(resource, dict):
            out.append(resource)
    return out


def _link(bundle: Mapping[str, Any], relation: str) -> str | None:
    for link in bundle.get("link") or []:
        if link.get("relation") == relation and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _sorted_by_last_updated(page: Mapping[str, Any]) -> bool:
    """Servers echo the parameters they applied in the ``self`` link; one that ignored
    ``_sort`` does not list it."""
    self_url = _link(page, "self")
    if self_url is None:
        return False
    return ("_sort", "_lastUpdated") in parse_qsl(urlsplit(self_url).query)


def _key(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _meta(resource: Mapping[str, Any], name: str) -> str | None:
    value = (resource.get("meta") or {}).get(name)
    return value if isinstance(value, str) else None


def _last_updated(resource: Mapping[str, Any]) -> tuple[datetime, str] | None:
    text = _meta(resource, "lastUpdated")
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text), text
    except ValueError:
        return None


# -- one resource --------------------------------------------------------------------------


async def receive_resources(
    resources: Iterable[dict[str, Any]],
    *,
    client: FhirClient,
    sessions: Sessions,
    mappings: Mappings,
    identifier_system: str,
    now: Clock,
    hooks: PullHooks | None = None,
) -> list[InboundResult]:
    """Apply server resources (from a search page or a notification) to our records, in one
    unit of work; the same rules as a pull (see module doc)."""
    receiver = _Receiver(
        client=client,
        mappings=mappings,
        identifier_system=identifier_system,
        now=now,
        hooks=hooks or PullHooks(),
    )
    return await receiver.receive(sessions, list(resources), cursor=None)


class _Receiver:
    def __init__(
        self,
        *,
        client: FhirClient,
        mappings: Mappings,
        identifier_system: str,
        now: Clock,
        hooks: PullHooks,
    ) -> None:
        self._client = client
        self._mappings = mappings
        self._system = identifier_system
        self._now = now
        self._hooks = hooks

    async def receive(
        self,
        sessions: Sessions,
        resources: list[dict[str, Any]],
        *,
        cursor: tuple[str, str] | None,
    ) -> list[InboundResult]:
        # Server reads happen before the unit of work, which then stays short.
        paths = await self._paths(sessions, resources)
        with unit_of_work(sessions) as session:
            store = Store(session, clock=self._now)
            busy = _pushes_waiting(store)
            results = [self._receive(store, r, paths.get(_key(r), []), busy) for r in resources]
            if cursor is not None:
                store.cursors.set(*cursor)
        return results

    # -- identifying ----------------------------------------------------------------------

    def identify(
        self, store: Store, resource: Mapping[str, Any]
    ) -> tuple[ResourceMapping, SyncTarget, FhirLink | None] | None:
        resource_type = resource.get("resourceType")
        server_id = resource.get("id")
        if not isinstance(resource_type, str):
            return None
        if isinstance(server_id, str):
            link = store.fhir_links.find_by_server_id(resource_type, server_id)
            if link is not None:
                try:
                    mapping = self._mappings.get(link.entity_kind.value, resource_type)
                except KeyError:
                    return None
                return mapping, link.target, link
        for identifier in resource.get("identifier") or []:
            if not isinstance(identifier, dict) or identifier.get("system") != self._system:
                continue
            value = str(identifier.get("value", ""))
            for mapping in self._mappings.resources:
                prefix = f"{mapping.identifier_prefix}/"
                if mapping.resource == resource_type and value.startswith(prefix):
                    target = SyncTarget(
                        EntityKind(mapping.concept), value.removeprefix(prefix), resource_type
                    )
                    return mapping, target, store.fhir_links.get(target)
        return None

    # -- the path between the version we hold and this one ------------------------------

    async def _paths(
        self, sessions: Sessions, resources: list[dict[str, Any]]
    ) -> dict[str, list[dict[str, Any]] | None]:
        """For each resource a guard wants the path of: the server's versions strictly between
        the one we hold and this one, oldest first (``None`` when the server cannot tell)."""
        if not self._hooks.guards:
            return {}
        wanted: list[tuple[dict[str, Any], FhirLink]] = []
        with sessions() as session:
            store = Store(session)
            for resource in resources:
                found = self.identify(store, resource)
                if found is None:
                    continue
                mapping, target, link = found
                version = _meta(resource, "versionId")
                if link is None or link.version_id in (None, version) or _older(resource, link):
                    continue
                local = store.repository(target.entity_kind).get(target.local_id)
                if local is None:
                    continue
                ctx = MappingContext(
                    self._system, LinkReferences(store), self._mappings.terminology
                )
                try:
                    remote = apply_resource(local, mapping, resource, ctx)
                except MappingError:
                    continue  # reported as unreadable when it is received
                if any(g.wants_path(local, remote) for g in self._hooks.guards):
                    wanted.append((resource, link))
        return {_key(r): await self._between(r, link) for r, link in wanted}

    async def _between(
        self, resource: Mapping[str, Any], link: FhirLink
    ) -> list[dict[str, Any]] | None:
        rtype, rid = str(resource["resourceType"]), str(resource["id"])
        if await self._history_unsupported(rtype):
            return None
        held, current = link.version_id, _meta(resource, "versionId")
        since = _meta(link.server_json, "lastUpdated") if link.server_json else None
        try:
            versions = await self._client.history(rtype, rid, since=since)
            ids = [_meta(v, "versionId") for v in versions]
            if held not in ids and since is not None:
                # R4 says _since includes that instant; a server that excludes it loses ours.
                versions = await self._client.history(rtype, rid)
                ids = [_meta(v, "versionId") for v in versions]
        except (NotFound, Gone):
            return None
        except StatusError as error:
            if error.status in _NO_HISTORY_STATUSES:
                return None
            raise
        if held not in ids or current not in ids:
            return None  # the history no longer reaches back to our version
        first, last = ids.index(held), ids.index(current)
        return versions[first + 1 : last] if first < last else None

    async def _history_unsupported(self, resource_type: str) -> bool:
        try:
            capabilities = await self._client.capabilities()
        except FhirError:
            return False  # no statement to go by: ask for the history and let the server say
        return capabilities.supports(resource_type, "history-instance") is Support.UNSUPPORTED

    # -- deciding -------------------------------------------------------------------------

    def _receive(
        self,
        store: Store,
        resource: dict[str, Any],
        path: list[dict[str, Any]] | None,
        busy: set[SyncTarget],
    ) -> InboundResult:
        reference = _key(resource)
        found = self.identify(store, resource)
        if found is None:
            if self._hooks.not_ours is not None and self._hooks.not_ours(store, resource):
                return InboundResult(reference, InboundOutcome.HANDLED)
            return InboundResult(reference, InboundOutcome.NOT_OURS)
        mapping, target, link = found
        version = _meta(resource, "versionId")
        if link is not None and link.version_id is not None:
            if link.version_id == version:
                return InboundResult(reference, InboundOutcome.ECHO, target)
            if _older(resource, link):
                return InboundResult(reference, InboundOutcome.STALE, target)
        local = store.repository(target.entity_kind).get(target.local_id)
        if local is None:
            return InboundResult(reference, InboundOutcome.NO_LOCAL_RECORD, target)
        ctx = MappingContext(self._system, LinkReferences(store), self._mappings.terminology)
        try:
            remote = apply_resource(local, mapping, resource, ctx)
            base = (
                apply_resource(local, mapping, link.server_json, ctx)
                if link is not None and link.server_json
                else None
            )
        except MappingError as exc:
            return InboundResult(reference, InboundOutcome.UNREADABLE, target, error=str(exc))
        changed = changed_fields(local, remote, mapping)
        if not changed:
            link_server_copy(store, target, resource, now=self._now(), content=True)
            return InboundResult(reference, InboundOutcome.UNCHANGED, target)

        ours_changed_too = target in busy or store.conflicts.open_for(target) is not None
        take: list[str] = []
        disputed: list[str] = []
        for name in changed:
            if name in mapping.remote_fields or not ours_changed_too:
                take.append(name)
            elif base is None:
                disputed.append(name)  # no common ancestor: cannot tell who changed it
            elif _value(remote, name) == _value(base, name):
                continue  # only we changed it: our pending push carries it
            elif _value(local, name) == _value(base, name):
                take.append(name)  # only the server changed it since our last sync
            else:
                disputed.append(name)
        merged = merge_fields(local, remote, take, keep=disputed)

        refusal = self._refusal(store, local, merged, resource, changed, path, mapping, ctx)
        if refusal is not None:
            held = tuple(take) or tuple(changed)
            conflict_id = store.conflicts.record(
                target=target,
                reason=ConflictReason.INVALID_TRANSITION.value,
                fields=list(held),
                local=local_resource(local, mapping, ctx, link),
                remote=resource,
            )
            return InboundResult(
                reference,
                InboundOutcome.INVALID_TRANSITION,
                target,
                disputed=held,
                conflict_id=conflict_id,
                error=refusal,
            )

        applied = tuple(f for f in take if f.split(".")[0] not in _heads(disputed))
        if applied:
            save_record_from_server(store, merged, mapping, applied, self._mappings)
            if self._hooks.after_apply is not None:
                self._hooks.after_apply(store, local, merged)
        if not disputed:
            link_server_copy(store, target, resource, now=self._now(), content=True)
            return InboundResult(reference, InboundOutcome.APPLIED, target, applied=applied)
        conflict_id = store.conflicts.record(
            target=target,
            reason=ConflictReason.CONCURRENT_EDIT.value,
            fields=disputed,
            local=local_resource(merged, mapping, ctx, link),
            remote=resource,
        )
        return InboundResult(
            reference,
            InboundOutcome.CONFLICT,
            target,
            applied=applied,
            disputed=tuple(disputed),
            conflict_id=conflict_id,
        )

    def _refusal(
        self,
        store: Store,
        local: Any,
        merged: Any,
        resource: dict[str, Any],
        changed: Sequence[str],
        path: list[dict[str, Any]] | None,
        mapping: ResourceMapping,
        ctx: MappingContext,
    ) -> str | None:
        """The first guard's reason to refuse this change, if any (see module doc)."""
        if not self._hooks.guards:
            return None
        records: tuple[Any, ...] | None = None
        if path is not None:
            try:
                records = tuple(apply_resource(local, mapping, v, ctx) for v in path)
            except MappingError:
                records = None  # a version in between we cannot read tells us nothing
        change = InboundChange(store, local, merged, resource, tuple(changed), records)
        for guard in self._hooks.guards:
            reason = guard.refusal(change)
            if reason is not None:
                return reason
        return None


# -- shared with conflict resolution -------------------------------------------------------


def changed_fields(local: Any, remote: Any, mapping: ResourceMapping) -> list[str]:
    """The domain fields ``mapping`` owns whose values differ between two records."""
    names = {rule.compiled.rule.field for rule in mapping.rules}
    for rule in mapping.rules:
        for companion in ("text_from", "display_from", "unit_from"):
            extra = getattr(rule.compiled.rule, companion)
            if extra:
                names.add(extra)
    names.discard("id")
    return sorted(n for n in names if _value(local, n) != _value(remote, n))


def merge_fields(local: Any, remote: Any, take: Iterable[str], *, keep: Iterable[str] = ()) -> Any:
    """``local`` with the fields in ``take`` copied from ``remote``.

    Nested values (a goal's target) move as a whole, so a nested field also listed in ``keep``
    keeps its whole value local.
    """
    heads = _heads(take) - _heads(keep)
    return dataclasses.replace(local, **{h: getattr(remote, h) for h in heads})


def save_record_from_server(
    store: Store,
    record: Any,
    mapping: ResourceMapping,
    applied: Sequence[str],
    mappings: Mappings,
) -> None:
    """Save a record changed by what the server says: no outbox entry for the resource it came
    from; the record's other resources that carry a changed field are queued for pushing."""
    kind = EntityKind(mapping.concept)
    store.repository(kind).save(record)
    heads = _heads(applied)
    for other in mappings.for_concept(mapping.concept):
        if other.resource != mapping.resource and heads & other.owned_fields:
            store.outbox.enqueue(SyncTarget(kind, record.id, other.resource))


def link_server_copy(
    store: Store, target: SyncTarget, resource: dict[str, Any], *, now: datetime, content: bool
) -> None:
    """Record ``resource`` as the server copy of ``target``. With ``content`` the record now
    says what the resource says, so an unchanged record is not pushed again."""
    version = _meta(resource, "versionId")
    store.fhir_links.upsert(
        FhirLink(
            entity_kind=target.entity_kind,
            local_id=target.local_id,
            resource_type=target.resource_type,
            server_id=str(resource["id"]),
            synced_at=now,
            version_id=version,
            etag=f'W/"{version}"' if version else None,
            content_hash=content_hash(resource) if content else None,
            server_json=resource,
        )
    )


def local_resource(
    record: Any, mapping: ResourceMapping, ctx: MappingContext, link: FhirLink | None
) -> dict[str, Any]:
    """What we would send for ``record``, laid over the server copy we last synced with."""
    base = link.server_json if link is not None else None
    try:
        return mapping.to_fhir(record, ctx, base=base)
    except MappingError as exc:
        # Kept anyway: a conflict without our side would be one a person cannot judge.
        return {"resourceType": mapping.resource, "unmappable": str(exc)}


def _pushes_waiting(store: Store) -> set[SyncTarget]:
    """Resources with a local change not yet on the server (pending or being pushed)."""
    return {
        entry.target
        for state in (OutboxState.PENDING, OutboxState.IN_FLIGHT)
        for entry in store.outbox.in_state(state)
    }


def _heads(names: Iterable[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def _value(record: Any, dotted: str) -> Any:
    value = record
    for part in dotted.split("."):
        if value is None:
            return None
        value = getattr(value, part)
    return value


def _older(resource: Mapping[str, Any], link: FhirLink) -> bool:
    """Whether ``resource`` is older than the server copy we hold, by ``meta.lastUpdated``
    (version ids are opaque: they say nothing about order)."""
    if link.server_json is None:
        return False
    mine, theirs = _last_updated(link.server_json), _last_updated(resource)
    return mine is not None and theirs is not None and theirs[0] < mine[0]
