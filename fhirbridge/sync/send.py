"""Send: transactions to the server, and reading a refusal.

Rules:

- A transaction holds at most the server's maximum of entries (configured, or learned: see
  ``size_refusal``); a record's resources (a referral's ServiceRequest and Task) stay together.
- A refusal is for the transaction's size when the server answers 413, or an OperationOutcome
  whose issue code is ``too-costly``/``too-long`` or whose diagnostics speak of too many entries
  or a size limit, and it does not name a single entry. The worker then sends smaller
  transactions (the number the server names, else half) and remembers that size.
- Any other refusal that names one entry (``Bundle.entry[3]``, its fullUrl or its ``Type/id``)
  condemns that entry alone (a lost If-Match race is looked at on its own); otherwise the
  transaction is halved, by record, then within one record's resources, until the offender is
  alone: only a refused single entry is a dead letter, with the server's OperationOutcome.
- Entries: a linked resource is a PUT with ``If-Match``; a new one a conditional create on its
  business identifier, or a PUT to an id derived from it where the server cannot search
  identifiers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fhirbridge.fhir import (
    Capabilities,
    FhirClient,
    StatusError,
    Support,
    TransactionBuilder,
    TransactionResult,
    VersionConflict,
    apply_transaction,
)
from fhirbridge.persistence import FhirLink, OutboxEntry, OutboxOperation, SyncTarget
from fhirbridge.sync.links import content_hash
from fhirbridge.sync.prepare import Prepared

__all__ = [
    "Refusal",
    "Sender",
    "add_entry",
    "by_record",
    "groups_of",
    "lost_race",
    "named_entry",
    "needs_lookup",
    "read_refusal",
    "size_refusal",
]

_SIZE_CODES = frozenset({"too-costly", "too-long"})
_SIZE_TEXT = re.compile(
    r"too many (entries|resources|operations|updates|requests|interactions)"
    r"|(transaction|bundle|batch|request)( body)? (is )?too (large|big|long)"
    r"|(more than|at most|maximum( of)?|max\.?|limit( of| is)?)\s*:?\s*\d+\s*"
    r"(entries|resources|operations|updates|requests|interactions)"
    r"|(entries|updates|operations|interactions)\b.{0,60}"
    r"\b(limit|maximum|exceed|at most|no more than)",
    re.IGNORECASE,
)
_ENTRY_INDEX = re.compile(r"entry\s*\[\s*(\d+)\s*\]", re.IGNORECASE)
_NUMBER = re.compile(r"\b(\d{1,6})\b")
_ID_END = r"(?![A-Za-z0-9\-.])"


def size_refusal(exc: StatusError, entries: int, names: Sequence[Sequence[str]] = ()) -> int | None:
    """How many entries to try next if ``exc`` refused a transaction of ``entries`` for its
    size; None when it is no size refusal (or a single entry was refused)."""
    if entries < 2 or named_entry(exc, names) is not None:
        return None
    issues = exc.outcome.issues if exc.outcome is not None else ()
    texts = [i.diagnostics or "" for i in issues]
    by_size = exc.status == 413 or any(
        i.code in _SIZE_CODES or _SIZE_TEXT.search(i.diagnostics or "") for i in issues
    )
    if not by_size:
        return None
    named = [int(n) for text in texts for n in _NUMBER.findall(text) if 0 < int(n) < entries]
    return min(named) if named else max(1, entries // 2)


def named_entry(exc: StatusError, names: Sequence[Sequence[str]]) -> int | None:
    """The index of the one entry the refusal names, if it names exactly one.

    ``names[i]`` are the strings entry ``i`` can be recognised by (fullUrl, ``Type/id``).
    """
    if exc.outcome is None:
        return None
    found: set[int] = set()
    for issue in exc.outcome.issues:
        for text in (*issue.expression, issue.diagnostics or ""):
            found.update(int(i) for i in _ENTRY_INDEX.findall(text))
    raw = json.dumps(exc.outcome.raw, default=str)
    for index, recognised in enumerate(names):
        # "Goal/goal-1" must not be found inside "Goal/goal-12".
        if any(name and re.search(re.escape(name) + _ID_END, raw) for name in recognised):
            found.add(index)
    found = {i for i in found if i < len(names)} if names else found
    return found.pop() if len(found) == 1 else None


def by_record(entries: Sequence[OutboxEntry]) -> list[list[OutboxEntry]]:
    """``entries`` grouped by record (a referral's ServiceRequest and Task), in order."""
    records: dict[tuple[str, str], list[OutboxEntry]] = {}
    for entry in entries:
        records.setdefault((entry.entity_kind.value, entry.local_id), []).append(entry)
    return list(records.values())


def groups_of(entries: Sequence[OutboxEntry], limit: int | None) -> list[list[OutboxEntry]]:
    """Transactions of at most ``limit`` entries (None: one), a record's resources together
    unless they alone exceed the limit; the order is kept."""
    if limit is None:
        return [list(entries)] if entries else []
    groups: list[list[OutboxEntry]] = []
    current: list[OutboxEntry] = []
    for record in by_record(entries):
        if current and len(current) + len(record) > limit:
            groups.append(current)
            current = []
        if len(record) > limit:
            groups.extend([entry] for entry in record)
            continue
        current.extend(record)
    if current:
        groups.append(current)
    return groups


def add_entry(
    builder: TransactionBuilder, item: Prepared, *, identifier_system: str, prefix: str
) -> None:
    """Add ``item`` to the transaction: a PUT with If-Match for a linked resource, a PUT to the
    client-assigned id where the server cannot search identifiers, else a conditional create
    on the business identifier."""
    # Handed over, not copied: a prepared resource is never changed after it is prepared (the
    # recorder derives new dicts from it), so the builder needs no copy of its own.
    entry = item.entry
    if item.link is not None:
        resource = {**item.resource, "id": item.link.server_id}
        version = item.link.version_id
        if_match = f'W/"{version}"' if version else None
        builder.update(resource, key=item.key, if_match=if_match, handed_over=True)
    elif item.literal_id is not None:
        resource = {**item.resource, "id": item.literal_id.split("/", 1)[1]}
        builder.update(resource, key=item.key, handed_over=True)
    else:
        criteria = {"identifier": f"{identifier_system}|{prefix}/{entry.local_id}"}
        builder.create(item.resource, key=item.key, if_none_exist=criteria, handed_over=True)


@dataclass(frozen=True)
class Refusal:
    """What to do after the server refused a transaction of ``items``.

    - ``smaller``: too large; send the same entries ``size`` at a time (and remember it);
    - ``refused``: one record's transaction; that record is refused (or lost a race);
    - ``named``: the refusal names ``items[index]``; the others are sent again without it;
    - ``split``: narrow it down: send ``parts`` one after the other.
    """

    kind: Literal["smaller", "refused", "named", "split"]
    size: int = 0
    index: int = 0
    parts: tuple[tuple[OutboxEntry, ...], ...] = ()


def lost_race(exc: StatusError) -> bool:
    """A failed If-Match (412, or 409 on some servers) rather than refused content."""
    return isinstance(exc, VersionConflict) or exc.status in (409, 412)


def read_refusal(
    exc: StatusError, items: Sequence[Prepared], builder: TransactionBuilder
) -> Refusal:
    names = [_names(builder, item) for item in items]
    smaller = size_refusal(exc, len(items), names)
    if smaller is not None:
        return Refusal("smaller", size=smaller)
    if len(items) == 1:
        return Refusal("refused")
    records = by_record([item.entry for item in items])
    named = named_entry(exc, names)
    if named is not None:
        return Refusal("named", index=named)
    if len(records) > 1:  # by halves, so the rest goes through while the offender is found
        middle = len(records) // 2
        halves = (records[:middle], records[middle:])
        return Refusal("split", parts=tuple(tuple(e for r in half for e in r) for half in halves))
    return Refusal("split", parts=tuple((entry,) for entry in records[0]))


def _names(builder: TransactionBuilder, item: Prepared) -> list[str]:
    """What a server's OperationOutcome may call this entry by."""
    names = [builder.ref(item.key)]
    if item.link is not None:
        names.append(f"{item.entry.resource_type}/{item.link.server_id}")
    elif item.literal_id is not None:
        names.append(item.literal_id)
    return names


def needs_lookup(entry: OutboxEntry, capabilities: Capabilities) -> bool:
    """Whether a new record of ``entry`` is looked for by identifier before it is created:
    where the server can search identifiers but not create conditionally."""
    rtype = entry.resource_type
    return (
        entry.operation is OutboxOperation.UPSERT
        and capabilities.supports_conditional_create(rtype) is Support.UNSUPPORTED
        and capabilities.supports_search_param(rtype, "identifier") is Support.SUPPORTED
    )


class Sender:
    """The worker's HTTP side: transactions, identifier look-ups, deletes."""

    def __init__(self, client: FhirClient, identifier_system: str) -> None:
        self._client = client
        self._system = identifier_system

    @property
    def base_url(self) -> str:
        return self._client.base_url

    async def capabilities(self) -> Capabilities:
        return await self._client.capabilities()

    async def transaction(self, builder: TransactionBuilder) -> TransactionResult:
        return await apply_transaction(self._client, builder)

    async def read(self, resource_type: str, server_id: str) -> tuple[dict[str, Any], str | None]:
        current = await self._client.read(resource_type, server_id)
        return current.resource or {}, current.version_id

    async def delete(self, resource_type: str, server_id: str) -> None:
        await self._client.delete(resource_type, server_id)

    async def find_existing(
        self,
        entries: Sequence[OutboxEntry],
        links: Mapping[SyncTarget, FhirLink],
        capabilities: Capabilities,
        prefix: Callable[[OutboxEntry], str],
        now: datetime,
    ) -> list[FhirLink]:
        """Where the server can search identifiers but not create conditionally, look before
        creating: a record already there (a lost earlier push) is linked, so it is updated,
        not created twice."""
        found: list[FhirLink] = []
        for entry in entries:
            if entry.target in links or not needs_lookup(entry, capabilities):
                continue
            rtype = entry.resource_type
            try:
                value = f"{prefix(entry)}/{entry.local_id}"
            except Exception:  # an unmapped record is for prepare to report
                continue
            identifier = f"{self._system}|{value}"
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
                        synced_at=now,
                        version_id=(resource.get("meta") or {}).get("versionId"),
                        content_hash=content_hash(resource),
                        server_json=resource,
                    )
                )
        return found
