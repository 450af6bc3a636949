"""Links and content hashes: what we know the server holds for each record.

Rules:

- ``content_hash(resource)`` is what a resource says, ignoring what the server stamps on it
  (``id``, ``meta``). Two pushes of the same content have the same hash.
- A link's ``content_hash`` is always the hash of what the server holds as far as we know
  (what we sent, with bundle placeholders replaced by server ids, or the server's own copy).
  A link is never saved without it: a missing hash would make the next round send identical
  content again, and a record would be written over and over.
- Inside one transaction a record not on the server yet is referenced by its entry key's
  placeholder (``k:<concept>/<local id>/<type>``), or, where the server cannot search
  identifiers, by a client-assigned id derived from the business identifier.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from fhirbridge.persistence import FhirLink, OutboxEntry, SyncTarget

__all__ = [
    "client_assigned_id",
    "content_hash",
    "entry_key",
    "make_link",
    "resolve_placeholders",
    "strip_server_meta",
]


def content_hash(resource: dict[str, Any]) -> str:
    """What the resource says, ignoring what the server stamps on it (id, meta)."""
    body = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def client_assigned_id(identifier_system: str, key: str) -> str:
    """A stable id derived from a business identifier, for servers that cannot search it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{identifier_system}|{key}"))


def entry_key(entry: OutboxEntry) -> str:
    """The transaction entry key of an outbox entry (``k:`` marks a placeholder key)."""
    return f"k:{entry.entity_kind.value}/{entry.local_id}/{entry.resource_type}"


def strip_server_meta(resource: dict[str, Any]) -> None:
    """Drop the server's version stamps from a resource mapped over the server copy."""
    meta = resource.get("meta")
    if isinstance(meta, dict):
        for stamp in ("versionId", "lastUpdated"):
            meta.pop(stamp, None)
        if not meta:
            resource.pop("meta")


def resolve_placeholders(node: Any, placeholders: dict[str, str]) -> Any:
    """``node`` with ``urn:uuid:`` placeholders replaced by the server's ``Type/id``."""
    if isinstance(node, dict):
        return {k: resolve_placeholders(v, placeholders) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_placeholders(v, placeholders) for v in node]
    if isinstance(node, str) and node.startswith("urn:uuid:"):
        return placeholders.get(node, node)
    return node


def make_link(
    target: SyncTarget,
    *,
    server_id: str | None,
    version_id: str | None,
    digest: str,
    server_json: dict[str, Any],
    synced_at: datetime,
) -> FhirLink:
    """The link for ``target``; ``digest`` is the hash of what the server now holds."""
    if server_id is None:
        raise ValueError(f"the server gave no id for {target.resource_type} {target.local_id}")
    return FhirLink(
        entity_kind=target.entity_kind,
        local_id=target.local_id,
        resource_type=target.resource_type,
        server_id=server_id,
        synced_at=synced_at,
        version_id=version_id,
        content_hash=digest,
        server_json=server_json,
    )
