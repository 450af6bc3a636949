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
* **Allowed?** A referral Task status moved by the performer must pass the Gravity / R4 Task
  machine (``check_referral_transition(..., by=Party.PERFORMER)``). When the status jumped over
  versions we did not see (accepted, in progress and completed between two pulls), the
  intermediate versions are read from the server's history and each step is checked. A move
  the machine forbids becomes an ``invalid-transition`` conflict and nothing of that version
  is applied.

Applied changes are saved without an outbox entry for the resource they came from (the server
already has them); another resource of the same record that carries a changed field (a
referral's ServiceRequest and Task share priority) is queued for pushing. The link then moves
to the server's version, content hash and JSON, so the next push is based on it. While a
conflict is open the link stays where it was: a push based on it is refused with 412 rather
than overwriting what the other side wrote.

**Extension point.** ``after_apply(store, before, after)``, when given, is called for every
applied change with the local record before and after it, in the same unit of work: whatever
it saves (and queues for pushing) commits or rolls back together with the change. The service
layer uses it to close the referral loop (``fhirbridge.services.referral``); sync itself knows
nothing of what it does, so the dependency points from services to sync, never back. Changes
held back (conflicts, invalid transitions) are not passed to it.

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
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.domain import Party, Referral, TaskStatus, TaskTransitionError
from fhirbridge.domain.referral import check_referral_transition
from fhirbridge.fhir import FhirClient, Gone, NotFound
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
from fhirbridge.sync.references import LinkReferences
from fhirbridge.sync.worker import content_hash

__all__ = [
    "MIN_TASK_PULL_INTERVAL",
    "AfterApply",
    "InboundOutcome",
    "InboundResult",
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

# Gravity SDOH CC: "systems SHALL NOT poll for Task updates more often than every 15 minutes".
MIN_TASK_PULL_INTERVAL = timedelta(minutes=15)
DEFAULT_PULL_INTERVAL = timedelta(minutes=60)
_MAX_RESTARTS = 3  # shifted pages: search again at most this often, then wait for next pull
_REFERRAL_TASK = ("referral", "Task")
_TRANSITION_FIELDS = ("task_status", "task_status_reason")


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
    after_apply: AfterApply | None = None,
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
        after_apply=after_apply,
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


@dataclass
class _Pass:
    """One search of a resource type from ``checkpoint``, page by page."""

    key: str
    checkpoint: str | None
    seen: set[str] = field(default_factory=set)
    stamps: list[tuple[datetime, str]] = field(default_factory=list)
    total: int | None = None
    sorted_by_server: bool = True

    async def run(
        self,
        client: FhirClient,
        sessions: Sessions,
        receiver: _Receiver,
        resource_type: str,
        page_size: int,
        report: PullReport,
    ) -> bool:
        """False when the pages shifted under us and the type must be searched again."""
        params: list[tuple[str, str]] = []
        if self.checkpoint is not None:
            params.append(("_lastUpdated", f"gt{self.checkpoint}"))
        params += [("_sort", "_lastUpdated"), ("_count", str(page_size))]
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
    after_apply: AfterApply | None = None,
) -> list[InboundResult]:
    """Apply server resources (from a search page or a notification) to our records, in one
    unit of work; the same rules as a pull (see module doc)."""
    receiver = _Receiver(
        client=client,
        mappings=mappings,
        identifier_system=identifier_system,
        now=now,
        after_apply=after_apply,
    )
    return await receiver.receive(sessions, list(resources), cursor=None)


@dataclass(frozen=True)
class _Step:
    status: str | None
    reason: str | None


class _Receiver:
    def __init__(
        self,
        *,
        client: FhirClient,
        mappings: Mappings,
        identifier_system: str,
        now: Clock,
        after_apply: AfterApply | None = None,
    ) -> None:
        self._client = client
        self._mappings = mappings
        self._system = identifier_system
        self._now = now
        self._after_apply = after_apply

    async def receive(
        self,
        sessions: Sessions,
        resources: list[dict[str, Any]],
        *,
        cursor: tuple[str, str] | None,
    ) -> list[InboundResult]:
        # Server reads happen before the unit of work, which then stays short.
        paths = await self._status_paths(sessions, resources)
        with unit_of_work(sessions) as session:
            store = Store(session, clock=self._now)
            busy = _pushes_waiting(store)
            results = [self._receive(store, r, paths.get(_key(r)), busy) for r in resources]
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

    # -- history of a referral Task --------------------------------------------------------

    async def _status_paths(
        self, sessions: Sessions, resources: list[dict[str, Any]]
    ) -> dict[str, list[_Step] | None]:
        """For referral Tasks whose status jumped further than one allowed step since the
        version we hold: the statuses of the versions in between, oldest first (``None`` when
        the server keeps no history)."""
        wanted: list[tuple[str, list[str]]] = []
        with sessions() as session:
            store = Store(session)
            for resource in resources:
                found = self.identify(store, resource) if resource.get("resourceType") else None
                if found is None or (found[0].concept, found[0].resource) != _REFERRAL_TASK:
                    continue
                link, referral = found[2], store.referrals.get(found[1].local_id)
                if link is None or referral is None or link.version_id is None:
                    continue
                final = _Step(resource.get("status"), _status_reason(resource))
                if _path_error(referral.task_status, [final]) is None:
                    continue
                between = _versions_between(link.version_id, _meta(resource, "versionId"))
                if between:
                    wanted.append((str(resource["id"]), between))
        paths: dict[str, list[_Step] | None] = {}
        for server_id, versions in wanted:
            steps: list[_Step] | None = []
            for version in versions:
                try:
                    older = (await self._client.vread("Task", server_id, version)).resource or {}
                except (NotFound, Gone):
                    steps = None
                    break
                assert steps is not None
                steps.append(_Step(older.get("status"), _status_reason(older)))
            paths[f"Task/{server_id}"] = steps
        return paths

    # -- deciding -------------------------------------------------------------------------

    def _receive(
        self,
        store: Store,
        resource: dict[str, Any],
        path: list[_Step] | None,
        busy: set[SyncTarget],
    ) -> InboundResult:
        reference = _key(resource)
        found = self.identify(store, resource)
        if found is None:
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

        if (mapping.concept, mapping.resource) == _REFERRAL_TASK and "task_status" in changed:
            assert isinstance(local, Referral)
            final = _Step(resource.get("status"), _status_reason(resource))
            error = _path_error(local.task_status, [final])
            if error is not None and path:
                error = _path_error(local.task_status, [*path, final])
            if error is not None:
                held = tuple(f for f in changed if f in mapping.remote_fields)
                conflict_id = store.conflicts.record(
                    target=target,
                    reason=ConflictReason.INVALID_TRANSITION.value,
                    fields=held or _TRANSITION_FIELDS[:1],
                    local=local_resource(local, mapping, ctx, link),
                    remote=resource,
                )
                return InboundResult(
                    reference,
                    InboundOutcome.INVALID_TRANSITION,
                    target,
                    disputed=held,
                    conflict_id=conflict_id,
                    error=str(error),
                )

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
        applied = tuple(f for f in take if f.split(".")[0] not in _heads(disputed))
        if applied:
            save_record_from_server(store, merged, mapping, applied, self._mappings)
            if self._after_apply is not None:
                self._after_apply(store, local, merged)
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


def _status_reason(resource: Mapping[str, Any]) -> str | None:
    text = (resource.get("statusReason") or {}).get("text")
    return text if isinstance(text, str) else None


def _path_error(current: TaskStatus, steps: Sequence[_Step]) -> TaskTransitionError | None:
    status = current
    for step in steps:
        try:
            target = TaskStatus(str(step.status))
        except ValueError:
            return TaskTransitionError(status, status, reason=f"unknown status {step.status!r}")
        try:
            check_referral_transition(status, target, by=Party.PERFORMER, reason=step.reason)
        except TaskTransitionError as exc:
            return exc
        status = target
    return None


def _versions_between(held: str, current: str | None) -> list[str]:
    """Version ids strictly between two numeric versions (most servers count 1, 2, 3...)."""
    if current is None or not (held.isdigit() and current.isdigit()):
        return []
    return [str(v) for v in range(int(held) + 1, int(current))]


def _older(resource: Mapping[str, Any], link: FhirLink) -> bool:
    version, held = _meta(resource, "versionId"), link.version_id
    if version is not None and held is not None and version.isdigit() and held.isdigit():
        return int(version) < int(held)
    if link.server_json is None:
        return False
    mine, theirs = _last_updated(link.server_json), _last_updated(resource)
    return mine is not None and theirs is not None and theirs[0] < mine[0]
