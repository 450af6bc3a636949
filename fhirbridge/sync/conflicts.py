"""Resolving sync conflicts: a person (or a rule acting for one) decides, nothing is silent.

A conflict holds our side (``local``, what we would send) and the server's (``remote``, with
its ``meta.versionId``). The resolutions:

``keep-local``
    Our record stands. The link moves to the remote version and JSON, and the record is queued
    for pushing: the worker PUTs it with ``If-Match`` on that remote version, laid over the
    remote JSON, so others' elements survive and a newer server change is refused (412, a new
    conflict) instead of overwritten.
``take-remote``
    The server's values of the disputed fields (every field the mapping reads when the conflict
    names none, as after a refused push) are applied to the record without an outbox entry for
    that resource; the link moves to the remote version. Local changes to other fields stay and
    are still pushed, based on the remote version.
``manual``
    A person merged both sides into the record (``merged``, or the record as they already
    edited it). It is saved and pushed like ``keep-local``.

Every resolution names who made it (``by``); the conflict keeps both versions afterwards.
Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

from datetime import datetime

from fhirbridge.mapping.context import MappingContext
from fhirbridge.mapping.engine import apply_resource
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import (
    Conflict,
    ConflictNotFound,
    ConflictResolved,
    ConflictState,
    Record,
    Resolution,
    Store,
    entity_kind_of,
)
from fhirbridge.sync.pull import (
    changed_fields,
    link_server_copy,
    merge_fields,
    save_record_from_server,
)
from fhirbridge.sync.references import LinkReferences

__all__ = ["MergedRecordMismatch", "resolve_conflict"]


class MergedRecordMismatch(ValueError):
    """A manual merge must be the record the conflict is about."""

    def __init__(self, conflict: Conflict, kind: str, local_id: str) -> None:
        self.conflict_id = conflict.id
        super().__init__(
            f"conflict {conflict.id} is about {conflict.entity_kind.value} {conflict.local_id},"
            f" not {kind} {local_id}"
        )


def resolve_conflict(
    *,
    store: Store,
    conflict_id: int,
    resolution: Resolution,
    by: str,
    mappings: Mappings,
    identifier_system: str,
    now: datetime,
    merged: Record | None = None,
) -> Conflict:
    """Carry out ``resolution`` on the record and mark the conflict resolved by ``by``."""
    conflict = store.conflicts.get(conflict_id)
    if conflict is None:
        raise ConflictNotFound(conflict_id)
    if conflict.state is ConflictState.RESOLVED:
        assert conflict.resolution is not None
        raise ConflictResolved(conflict_id, conflict.resolution)
    if merged is not None and resolution is not Resolution.MANUAL:
        raise ValueError("only a manual resolution takes a merged record")
    if resolution is Resolution.TAKE_REMOTE:
        _take_remote(store, conflict, mappings, identifier_system, now)
    else:
        if merged is not None:
            kind = entity_kind_of(merged)
            if (kind, merged.id) != (conflict.entity_kind, conflict.local_id):
                raise MergedRecordMismatch(conflict, kind.value, merged.id)
            store.repository(kind).save(merged)
        _push_over_remote(store, conflict, now)
    return store.conflicts.resolve(conflict_id, resolution=resolution, by=by)


def _push_over_remote(store: Store, conflict: Conflict, now: datetime) -> None:
    link_server_copy(store, conflict.target, conflict.remote, now=now, content=False)
    store.outbox.enqueue(conflict.target, now=now)


def _take_remote(
    store: Store, conflict: Conflict, mappings: Mappings, identifier_system: str, now: datetime
) -> None:
    mapping = mappings.get(conflict.entity_kind.value, conflict.resource_type)
    local = store.repository(conflict.entity_kind).require(conflict.local_id)
    ctx = MappingContext(identifier_system, LinkReferences(store), mappings.terminology)
    remote = apply_resource(local, mapping, conflict.remote, ctx)
    fields = conflict.fields or changed_fields(local, remote, mapping)
    taken = [f for f in fields if f in changed_fields(local, remote, mapping)]
    if taken:
        save_record_from_server(store, merge_fields(local, remote, taken), mapping, taken, mappings)
    settled = not changed_fields(merge_fields(local, remote, taken), remote, mapping)
    link_server_copy(store, conflict.target, conflict.remote, now=now, content=settled)
