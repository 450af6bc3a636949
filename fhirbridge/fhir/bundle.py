"""Transaction Bundles: build them with references between new resources, read the response back.

Resources that do not exist yet have no id to reference. ``TransactionBuilder`` gives every entry a
key; ``builder.ref(key)`` is a ``urn:uuid:`` placeholder that other resources put in their
References (even before the keyed entry is added). On ``build()`` placeholders of entries whose id
is already known (plain updates) become ``Type/id``; the rest stay ``urn:uuid:`` fullUrls for the
server to resolve. ``apply_individually`` does that resolution itself for servers without
transactions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from fhirbridge.fhir.client import FhirClient
from fhirbridge.fhir.errors import (
    FhirError,
    MalformedResponse,
    Outcome,
    PartiallyApplied,
    RequestInfo,
)
from fhirbridge.fhir.results import ResourceResult, etag_version, parse_location, weak_etag
from fhirbridge.jsondata import clone, clone_rewriting_references

__all__ = [
    "BundleBuildError",
    "EntryResult",
    "TransactionBuilder",
    "TransactionResult",
    "apply_individually",
    "apply_transaction",
]


class BundleBuildError(ValueError):
    """The builder was asked for something no server could execute (unknown key, cycle, …)."""


@dataclass(frozen=True)
class _Entry:
    key: str
    kind: Literal["create", "update", "conditional-update"]
    resource: dict[str, Any]
    if_none_exist: str | None = None
    if_match: str | None = None
    criteria: str | None = None

    @property
    def type(self) -> str:
        return str(self.resource["resourceType"])

    @property
    def literal(self) -> str | None:
        """``Type/id`` when the id is known before the request (a plain update)."""
        return f"{self.type}/{self.resource['id']}" if self.kind == "update" else None


@dataclass(frozen=True)
class EntryResult:
    """What the server did with one entry."""

    key: str
    type: str
    status: int
    id: str | None
    version_id: str | None
    etag: str | None
    location: str | None
    last_modified: str | None = None
    resource: dict[str, Any] | None = None
    outcome: Outcome | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def created(self) -> bool:
        return self.status == 201

    @property
    def reference(self) -> str | None:
        return f"{self.type}/{self.id}" if self.id else None


class TransactionResult(Sequence[EntryResult]):
    """Per-entry results in the order the entries were added; also indexable by key."""

    def __init__(self, results: Sequence[EntryResult]) -> None:
        self._results = tuple(results)
        self._by_key = {r.key: r for r in self._results}

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[EntryResult]:
        return iter(self._results)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, str):
            return self._by_key[index]
        return self._results[index]

    def by_key(self, key: str) -> EntryResult:
        return self._by_key[key]

    def __repr__(self) -> str:
        return f"TransactionResult({list(self._results)!r})"


class TransactionBuilder:
    """Collects creates and updates for one ``transaction`` Bundle."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._keys: set[str] = set()
        self._placeholders: dict[str, str] = {}
        # Keys whose placeholder was handed out (``ref``): only those can be inside resources.
        self._handed_out: set[str] = set()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(e.key for e in self._entries)

    def ref(self, key: str) -> str:
        """A reference to the entry ``key``, valid inside this bundle (may precede the entry)."""
        self._handed_out.add(key)
        return self._placeholder(key)

    def _placeholder(self, key: str) -> str:
        if key not in self._placeholders:
            self._placeholders[key] = f"urn:uuid:{uuid.uuid4()}"
        return self._placeholders[key]

    def create(
        self,
        resource: Mapping[str, Any],
        *,
        key: str | None = None,
        if_none_exist: str | Mapping[str, str] | None = None,
        handed_over: bool = False,
    ) -> str:
        """Add a POST; ``if_none_exist`` makes it conditional. Returns the entry's key.

        The builder keeps a copy of ``resource``, unless the caller hands it over
        (``handed_over``: the caller changes it no more, so no copy is needed).
        """
        criteria = _criteria(if_none_exist) if if_none_exist is not None else None
        kept = _kept(resource, handed_over)
        return self._add(_Entry(self._key(resource, key), "create", kept, criteria))

    def update(
        self,
        resource: Mapping[str, Any],
        *,
        key: str | None = None,
        if_match: str | None = None,
        handed_over: bool = False,
    ) -> str:
        """Add a PUT to ``Type/id``; ``if_match`` is the version the change is based on
        (``handed_over`` as for ``create``)."""
        if not isinstance(resource.get("id"), str):
            raise BundleBuildError("an update entry needs a resource with an id")
        kept = _kept(resource, handed_over)
        entry = _Entry(self._key(resource, key), "update", kept, if_match=if_match)
        return self._add(entry)

    def conditional_update(
        self,
        resource: Mapping[str, Any],
        query: str | Mapping[str, str],
        *,
        key: str | None = None,
    ) -> str:
        """Add a PUT to ``Type?query`` (update the single match or create)."""
        entry = _Entry(
            self._key(resource, key),
            "conditional-update",
            _copy(resource),
            criteria=_criteria(query),
        )
        return self._add(entry)

    def build(self) -> dict[str, Any]:
        """The transaction Bundle, with placeholders resolved as far as ids are known."""
        self._check_placeholders()
        # Only placeholders handed out can stand in a resource: when none of them is a plain
        # update's, no resource needs a look (walking every resource was a cost per push).
        literal = self._literals(handed_out=True)
        entries = []
        for entry in self._entries:
            # Entries hold private copies already; only the parts holding references to literal
            # entries are copied, rewritten (copying every resource again was a measurable
            # cost per push). The Bundle shares the rest with the entries.
            resource = _rewritten(entry.resource, literal) if literal else entry.resource
            item: dict[str, Any] = {"resource": resource, "request": self._request(entry)}
            if entry.literal is None:
                item = {"fullUrl": self._placeholder(entry.key), **item}
            entries.append(item)
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    def parse_response(
        self, bundle: Mapping[str, Any], *, request: RequestInfo | None = None
    ) -> TransactionResult:
        """Match a ``transaction-response`` to the entries (R4 keeps the request order)."""
        request = request or RequestInfo("POST", "transaction")
        items = bundle.get("entry") or []
        if len(items) != len(self._entries):
            raise MalformedResponse(
                f"transaction response has {len(items)} entries for {len(self._entries)} requests",
                request=request,
                status=200,
            )
        return TransactionResult(
            [_entry_result(e, item) for e, item in zip(self._entries, items, strict=True)]
        )

    # ------------------------------------------------------------------ internals

    def _key(self, resource: Mapping[str, Any], key: str | None) -> str:
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            raise BundleBuildError("resource has no resourceType")
        key = key or f"{rtype}-{len(self._entries) + 1}"
        if key in self._keys:
            raise BundleBuildError(f"duplicate entry key {key!r}")
        return key

    def _add(self, entry: _Entry) -> str:
        self._entries.append(entry)
        self._keys.add(entry.key)
        self._placeholder(entry.key)
        return entry.key

    def _literals(self, *, handed_out: bool = False) -> dict[str, str]:
        """Placeholder -> ``Type/id`` of the plain updates (``handed_out``: of those whose
        placeholder ``ref`` gave out)."""
        return {
            self._placeholders[e.key]: e.literal
            for e in self._entries
            if e.literal is not None and (not handed_out or e.key in self._handed_out)
        }

    def _check_placeholders(self) -> None:
        missing = sorted(set(self._placeholders) - self._keys)
        if missing:
            raise BundleBuildError(f"references to keys with no entry: {', '.join(missing)}")

    def _request(self, entry: _Entry) -> dict[str, str]:
        if entry.kind == "create":
            req = {"method": "POST", "url": entry.type}
            if entry.if_none_exist:
                req["ifNoneExist"] = entry.if_none_exist
            return req
        if entry.kind == "update":
            req = {"method": "PUT", "url": f"{entry.type}/{entry.resource['id']}"}
            if entry.if_match:
                req["ifMatch"] = weak_etag(entry.if_match)
            return req
        return {"method": "PUT", "url": f"{entry.type}?{entry.criteria}"}

    def _dependencies(self) -> dict[str, set[str]]:
        """Which keys each entry references through a placeholder."""
        by_placeholder = {self._placeholders[e.key]: e.key for e in self._entries}
        return {
            e.key: {by_placeholder[r] for r in _references(e.resource) if r in by_placeholder}
            - {e.key}
            for e in self._entries
        }

    def _individual_order(self) -> list[_Entry]:
        """Referenced entries first, otherwise insertion order; a cycle needs a transaction."""
        deps = self._dependencies()
        done: set[str] = set()
        ordered: list[_Entry] = []
        pending = list(self._entries)
        while pending:
            ready = next((e for e in pending if deps[e.key] <= done), None)
            if ready is None:
                keys = ", ".join(e.key for e in pending)
                raise BundleBuildError(
                    f"entries {keys} reference each other in a cycle; only a transaction can "
                    "create them"
                )
            pending.remove(ready)
            done.add(ready.key)
            ordered.append(ready)
        return ordered


async def apply_transaction(client: FhirClient, builder: TransactionBuilder) -> TransactionResult:
    """Send the entries as one transaction, or one by one if the server has no transactions."""
    if len(builder) == 0:
        return TransactionResult([])
    capabilities = await client.capabilities()
    if not capabilities.transaction:
        return await apply_individually(client, builder)
    response = await client.transaction(builder.build())
    return builder.parse_response(response, request=RequestInfo("POST", client.base_url))


async def apply_individually(client: FhirClient, builder: TransactionBuilder) -> TransactionResult:
    """Execute the entries as separate requests, rewriting placeholders to the ids returned.

    Not atomic: if an entry fails, ``PartiallyApplied`` lists the entries already applied.
    """
    builder._check_placeholders()
    resolved = builder._literals()
    results: dict[str, EntryResult] = {}
    for entry in builder._individual_order():
        resource = _rewrite(entry.resource, resolved)
        try:
            if entry.kind == "create":
                outcome = await client.create(resource, if_none_exist=entry.if_none_exist)
            elif entry.kind == "update":
                outcome = await client.update(resource, if_match=entry.if_match)
            else:
                assert entry.criteria is not None
                outcome = await client.conditional_update(resource, entry.criteria)
        except FhirError as exc:
            raise PartiallyApplied(
                f"entry {entry.key!r} failed after {len(results)} applied: {exc.message}",
                request=exc.request,
                applied=[results[k] for k in builder.keys if k in results],
                failed_key=entry.key,
            ) from exc
        result = _from_resource_result(entry, outcome)
        results[entry.key] = result
        if result.reference is not None:
            resolved[builder.ref(entry.key)] = result.reference
    return TransactionResult([results[k] for k in builder.keys])


# ---------------------------------------------------------------------- helpers


def _copy(resource: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = clone(dict(resource))
    return copied


def _kept(resource: Mapping[str, Any], handed_over: bool) -> dict[str, Any]:
    if handed_over and isinstance(resource, dict):
        return resource
    return _copy(resource)


def _criteria(query: str | Mapping[str, str]) -> str:
    text = query if isinstance(query, str) else urlencode(query)
    if not text:
        raise BundleBuildError("conditional entries need search criteria")
    return text


def _references(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        value = node.get("reference")
        if isinstance(value, str):
            yield value
        for child in node.values():
            yield from _references(child)
    elif isinstance(node, list):
        for child in node:
            yield from _references(child)


def _rewrite(resource: dict[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    rewritten: dict[str, Any] = clone_rewriting_references(resource, mapping)
    return rewritten


def _rewritten(node: Any, mapping: Mapping[str, str]) -> Any:
    """``node`` with every ``{"reference": r}``, ``r`` in ``mapping``, replaced; containers on
    the way to a replaced reference are new, everything else is ``node``'s own."""
    if isinstance(node, dict):
        out: dict[str, Any] | None = None
        for key, value in node.items():
            new = _rewritten(value, mapping)
            if new is not value:
                out = out if out is not None else dict(node)
                out[key] = new
        target = node.get("reference")
        if isinstance(target, str) and target in mapping:
            out = out if out is not None else dict(node)
            out["reference"] = mapping[target]
        return node if out is None else out
    if isinstance(node, list):
        items: list[Any] | None = None
        for index, value in enumerate(node):
            new = _rewritten(value, mapping)
            if new is not value:
                items = items if items is not None else list(node)
                items[index] = new
        return node if items is None else items
    return node


def _status_code(text: object) -> int:
    head = str(text).strip().split(" ", 1)[0]
    return int(head) if head.isdigit() else 0


def _entry_result(entry: _Entry, item: Mapping[str, Any]) -> EntryResult:
    response = item.get("response") or {}
    resource = item.get("resource") if isinstance(item.get("resource"), dict) else None
    location = response.get("location")
    loc = parse_location(location)
    etag = response.get("etag")
    meta = (resource or {}).get("meta") or {}
    version = meta.get("versionId") or etag_version(etag) or (loc.version if loc else None)
    rid = (resource or {}).get("id") or (loc.id if loc else None)
    return EntryResult(
        key=entry.key,
        type=entry.type,
        status=_status_code(response.get("status")),
        id=str(rid) if rid else None,
        version_id=str(version) if version else None,
        etag=etag,
        location=location,
        last_modified=response.get("lastModified"),
        resource=resource,
        outcome=Outcome.from_json(response.get("outcome")),
    )


def _from_resource_result(entry: _Entry, result: ResourceResult) -> EntryResult:
    return EntryResult(
        key=entry.key,
        type=entry.type,
        status=result.status,
        id=result.id,
        version_id=result.version_id,
        etag=result.etag,
        location=result.location,
        last_modified=result.last_modified,
        resource=result.resource,
        outcome=result.outcome,
    )
