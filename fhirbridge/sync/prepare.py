"""Prepare: map each claimed record to its FHIR resource, check it, decide what to send.

Rules:

- A record is mapped over the server copy we last saw (elements others own survive), then
  checked against R4B and the profile rules: a resource that fails is never sent, it becomes a
  dead letter with the findings.
- Any exception while preparing one record (a mapping error, a record that no longer exists, a
  person it names that does not exist, a crash in a check, anything) makes THAT entry a dead
  letter whose reason names the kind, the local id and, where known, the field (``goal g-7:
  expressed_by: no care-team member 'ghost'``); the other records go on. Storage failures are
  not the record's fault: they fail the batch, which is retried.
- Content equal to what the server holds (same hash as the link) is not sent.
- Records of the same transaction reference each other through the bundle's placeholders; a
  record whose entry is not sent after all (dead, waiting) is no placeholder target, so the
  others are prepared again without it.
- A reference to one of our records that has no server id yet:
  * the target is not waiting to be pushed (no pending or in-flight entry): it will never
    exist; an optional reference is left out, a required one makes the record a dead letter;
  * the target is waiting (pending, or in flight under some claim, perhaps a dead worker's):
    the record waits (deferred, nothing sent) when the reference is required or points
    backwards in push order (``Mappings.plan.rank``: at or before the record); an optional
    forward reference (CarePlan.activity -> Task, whose basedOn points back: a cycle) is left
    out and the record is sent once without it, then waits until it can be completed (see
    ``record``). Identical content is never sent twice, so nothing goes round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.conformance import NonConformantResource, ensure_conformant
from fhirbridge.fhir import Capabilities, Support, TransactionBuilder
from fhirbridge.mapping.context import MappingContext, MappingError
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import (
    EntityKind,
    FhirLink,
    OutboxEntry,
    OutboxOperation,
    RecordNotFound,
    Store,
    SyncTarget,
)
from fhirbridge.sync.links import (
    client_assigned_id,
    content_hash,
    entry_key,
    same_content,
    strip_server_meta,
)
from fhirbridge.sync.references import LinkReferences, UnresolvedReference

__all__ = ["Preparation", "Prepared", "Preparer", "Verdict", "describe_failure"]

_PEOPLE = {
    EntityKind.CARE_TEAM_MEMBER: "care-team member",
    EntityKind.PATIENT_LINK: "patient",
}


@dataclass
class Prepared:
    """One resource ready for the transaction."""

    entry: OutboxEntry
    resource: dict[str, Any]
    hash: str
    link: FhirLink | None
    key: str
    literal_id: str | None = None  # client-assigned "Type/id" (server cannot search identifiers)
    # Optional forward references left out because their targets are still waiting to be
    # pushed: once those are on the server the record is completed.
    waiting_for: tuple[SyncTarget, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """An entry settled without sending anything."""

    entry: OutboxEntry
    decision: Literal["dead", "defer", "unchanged"]
    reason: str = ""
    waiting_for: tuple[SyncTarget, ...] = ()


@dataclass
class Preparation:
    builder: TransactionBuilder
    items: list[Prepared]
    verdicts: list[Verdict]


class _BatchReferences(LinkReferences):
    """Records sent in this transaction are referenced through the bundle's placeholders."""

    def __init__(
        self,
        store: Store,
        mappings: Mappings,
        builder: TransactionBuilder,
        in_batch: dict[str, str],
        links: dict[SyncTarget, FhirLink],
    ) -> None:
        super().__init__(store, known=links.values(), plan=mappings.plan)
        self._plan = mappings.plan
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
            resource_type = self._plan.primary_or_none(concept)
            if resource_type is not None:  # a staff member without a Practitioner never will
                self.missing.append(SyncTarget(EntityKind(concept), local_id, resource_type))
            raise


class Preparer:
    def __init__(
        self, sessions: sessionmaker[Session], mappings: Mappings, identifier_system: str
    ) -> None:
        self._sessions = sessions
        self._mappings = mappings
        self._plan = mappings.plan
        self._system = identifier_system

    @property
    def identifier_system(self) -> str:
        return self._system

    def prepare(self, entries: Sequence[OutboxEntry], capabilities: Capabilities) -> Preparation:
        """Map and check the upserts among ``entries`` (read-only: decisions are returned)."""
        upserts = [e for e in entries if e.operation is OutboxOperation.UPSERT]
        with self._sessions() as session:
            store = Store(session)
            links = store.fhir_links.get_many(e.target for e in upserts)
            records = self._records(store, upserts)
            placeholders: dict[SyncTarget, str] = {}
            early: list[Verdict] = []
            for entry in upserts:
                try:
                    link = links.get(entry.target)
                    placeholders[entry.target] = self._placeholder(entry, link, capabilities)
                except Exception as exc:  # a poison record never stops a batch
                    early.append(Verdict(entry, "dead", describe_failure(entry, None, exc)))
            candidates = [e for e in upserts if e.target in placeholders]
            allowed = {
                e.target
                for e in candidates
                if self._plan.is_primary(e.entity_kind.value, e.resource_type)
            }
            while True:
                builder = TransactionBuilder()
                in_batch = {f"{t.entity_kind.value}/{t.local_id}": placeholders[t] for t in allowed}
                refs = _BatchReferences(store, self._mappings, builder, in_batch, links)
                refs.know_patients(_patients_of(records.values()))
                items, verdicts = self._pass(session, store, candidates, records, links, refs)
                # A linked record is referenced by its server id; any other must be sent in
                # this transaction for its placeholder to mean something.
                unsent = {t for t in allowed if t not in links} - {i.entry.target for i in items}
                if not unsent:
                    for item in items:
                        item.literal_id = _literal(placeholders[item.entry.target], item.link)
                    return Preparation(builder, items, early + verdicts)
                allowed -= unsent

    # -- one pass over the batch --------------------------------------------------------

    def _pass(
        self,
        session: Session,
        store: Store,
        entries: Sequence[OutboxEntry],
        records: dict[tuple[EntityKind, str], Any],
        links: dict[SyncTarget, FhirLink],
        refs: _BatchReferences,
    ) -> tuple[list[Prepared], list[Verdict]]:
        items: list[Prepared] = []
        verdicts: list[Verdict] = []
        dead: set[SyncTarget] = set()
        for entry in entries:
            record = records.get((entry.entity_kind, entry.local_id))
            try:
                outcome = self._one(store, entry, record, links.get(entry.target), refs, dead)
            except DBAPIError:
                raise  # storage trouble, not the record's: the batch is retried
            except Exception as exc:  # a poison record never stops a batch
                session.rollback()  # read-only so far; a failed query must not poison the rest
                outcome = Verdict(entry, "dead", describe_failure(entry, record, exc))
            if isinstance(outcome, Prepared):
                items.append(outcome)
            else:
                verdicts.append(outcome)
                if outcome.decision == "dead":
                    dead.add(entry.target)
        return items, verdicts

    def _one(
        self,
        store: Store,
        entry: OutboxEntry,
        record: Any,
        link: FhirLink | None,
        refs: _BatchReferences,
        dead: set[SyncTarget],
    ) -> Prepared | Verdict:
        who = f"{entry.entity_kind.value} {entry.local_id}"
        if record is None:
            return Verdict(entry, "dead", f"{who}: the record no longer exists")
        mapping = self._mappings.get(entry.entity_kind.value, entry.resource_type)
        ctx = MappingContext(self._system, refs, self._mappings.terminology)
        refs.missing.clear()
        resource = mapping.to_fhir(record, ctx, base=link.server_json if link else None)
        strip_server_meta(resource)
        digest = content_hash(resource)
        missing = tuple(dict.fromkeys(refs.missing))
        waiting = store.outbox.waiting(missing) - dead if missing else set()
        waiting_for = tuple(t for t in missing if t in waiting)
        if link is not None and same_content(link.content_hash, resource, digest):
            if waiting_for:  # sent without them before; completed once they are on the server
                return Verdict(entry, "defer", _waiting_text(waiting_for), waiting_for)
            return Verdict(entry, "unchanged")
        try:
            ensure_conformant(resource)
        except NonConformantResource as exc:
            if waiting_for:  # a reference the profile requires is not on the server yet
                return Verdict(entry, "defer", _waiting_text(waiting_for), waiting_for)
            return Verdict(entry, "dead", f"{who}: {exc}")
        rank = self._plan.rank(entry.entity_kind.value)
        backwards = tuple(t for t in waiting_for if self._plan.rank(t.entity_kind.value) <= rank)
        if backwards:
            return Verdict(entry, "defer", _waiting_text(backwards), backwards)
        return Prepared(entry, resource, digest, link, entry_key(entry), None, waiting_for)

    # -- helpers ------------------------------------------------------------------------

    def _records(
        self, store: Store, entries: Sequence[OutboxEntry]
    ) -> dict[tuple[EntityKind, str], Any]:
        ids: dict[EntityKind, set[str]] = {}
        for entry in entries:
            ids.setdefault(entry.entity_kind, set()).add(entry.local_id)
        return {
            (kind, local_id): record
            for kind, wanted in ids.items()
            for local_id, record in store.repository(kind).get_many(wanted).items()
        }

    def _placeholder(
        self, entry: OutboxEntry, link: FhirLink | None, capabilities: Capabilities
    ) -> str:
        """How other entries of the batch refer to this one: a builder key or "Type/id"."""
        if link is not None:
            return f"{entry.resource_type}/{link.server_id}"
        rtype = entry.resource_type
        if capabilities.supports_search_param(rtype, "identifier") is not Support.SUPPORTED:
            key = f"{rtype}/{self.identifier_prefix(entry)}/{entry.local_id}"
            return f"{rtype}/{client_assigned_id(self._system, key)}"
        return entry_key(entry)

    def identifier_prefix(self, entry: OutboxEntry) -> str:
        return self._mappings.get(entry.entity_kind.value, entry.resource_type).identifier_prefix


def _patients_of(records: Iterable[Any]) -> set[str]:
    """The patients the records belong to (each record's ``patient_id``, where it has one)."""
    return {
        patient
        for record in records
        if isinstance(patient := getattr(record, "patient_id", None), str)
    }


def _literal(placeholder: str, link: FhirLink | None) -> str | None:
    return None if placeholder.startswith("k:") or link is not None else placeholder


def _waiting_text(targets: Sequence[SyncTarget]) -> str:
    return "waiting for " + ", ".join(f"{t.entity_kind.value} {t.local_id}" for t in targets)


def describe_failure(entry: OutboxEntry, record: Any, exc: BaseException) -> str:
    """A dead letter's reason: kind, local id and, where known, the field and the cause."""
    who = f"{entry.entity_kind.value} {entry.local_id}"
    if isinstance(exc, RecordNotFound):
        what = f"no {_PEOPLE.get(exc.entity_kind, exc.entity_kind.value)} {exc.local_id!r}"
        name = _field_holding(record, exc.local_id)
        return f"{who}: {name}: {what}" if name else f"{who}: {what}"
    if isinstance(exc, MappingError):
        return f"{who}: {exc}"
    return f"{who}: {type(exc).__name__}: {exc}"


def _field_holding(record: Any, value: str) -> str | None:
    """The name of the record's field that holds ``value`` (or a list containing it)."""
    if record is None or not dataclasses.is_dataclass(record):
        return None
    for item in dataclasses.fields(record):
        held = getattr(record, item.name, None)
        if held == value or (isinstance(held, list | tuple | set | frozenset) and value in held):
            return item.name
    return None
