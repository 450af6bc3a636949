"""Links and content hashes: what we know the server holds for each record.

Rules:

- ``content_hash(resource)`` is what a resource says, ignoring what the server stamps on it
  (``id``, ``meta``). Two pushes of the same content have the same hash.
- Hashes are ``sha256:`` and the hex digest of the resource's compact JSON with sorted keys
  (orjson: hashing is done twice per pushed resource, and the standard library's encoder was
  a measurable part of a push). Links saved before that hold the bare hex digest of
  ``json.dumps(sort_keys=True, default=str)``; ``same_content`` still recognises them, so an
  upgrade does not send every record once more.
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

import orjson

from fhirbridge.persistence import FhirLink, OutboxEntry, SyncTarget

__all__ = [
    "client_assigned_id",
    "content_hash",
    "entry_key",
    "make_link",
    "resolve_placeholders",
    "same_content",
    "strip_server_meta",
]

_HASH_PREFIX = "sha256:"
# Values JSON has no spelling for are written as ``str(value)``, as json.dumps(default=str) did:
# datetimes, dates and times (orjson would write them in ISO form itself), Decimals and
# dataclasses (orjson would write these as objects) go to ``default``.
_HASH_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def content_hash(resource: dict[str, Any]) -> str:
    """What the resource says, ignoring what the server stamps on it (id, meta)."""
    body = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    try:
        text = orjson.dumps(body, default=str, option=_HASH_OPTIONS)
    except TypeError:
        # What orjson cannot write (an integer beyond 64 bits, a key that is no string) gets
        # the standard library's spelling: still one hash per content, recognised as below.
        return _json_hash(body)
    return _HASH_PREFIX + hashlib.sha256(text).hexdigest()


def same_content(stored: str | None, resource: dict[str, Any], digest: str) -> bool:
    """Whether a link's ``stored`` hash is of ``resource`` (whose ``content_hash`` is
    ``digest``). A hash without the ``sha256:`` prefix was saved before hashes were written
    with orjson (or by its fallback): it is compared in the spelling it was made with."""
    if stored is None:
        return False
    if stored.startswith(_HASH_PREFIX):
        return stored == digest
    body = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    return stored == _json_hash(body)


def _json_hash(body: dict[str, Any]) -> str:
    """The hash every link held before ``sha256:`` hashes (kept byte for byte)."""
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
