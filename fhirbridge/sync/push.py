"""Push domain records to a FHIR server as one idempotent transaction.

Every resource carries its business identifier. Where the server can search that identifier,
creates are conditional (``ifNoneExist``); where it cannot (sekmet has no Goal search, for
one), the resource gets a client-assigned id derived from the identifier and is PUT, which is
just as safe to repeat. Records are checked against the profiles before anything is sent: a
resource that fails is never sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fhirbridge.conformance import ensure_conformant
from fhirbridge.fhir import (
    Capabilities,
    FhirClient,
    Support,
    TransactionBuilder,
    apply_individually,
)
from fhirbridge.fhir import apply_transaction as send_transaction
from fhirbridge.mapping.codes import Terminology
from fhirbridge.mapping.context import MappingContext
from fhirbridge.mapping.engine import ResourceMapping
from fhirbridge.mapping.loader import Mappings
from fhirbridge.mapping.references import PRIMARY_RESOURCE, StaticReferences

__all__ = ["PUSH_ORDER", "PushItem", "PushResult", "key_of", "plan_push", "push"]

# Dependency order: what a resource references is created before it.
PUSH_ORDER = (
    "enrollment",
    "program_consent",
    "goal",
    "care_plan",
    "referral",
    "care_task",
    "time_entry",
    "charge",
)


@dataclass(frozen=True)
class PushItem:
    concept: str
    record: Any
    mapping: ResourceMapping
    key: str  # "<ResourceType>/<identifier value>"


@dataclass
class PushResult:
    created: dict[str, str] = field(default_factory=dict)  # key -> "Type/id"
    unchanged: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.created) + len(self.unchanged)


def client_assigned_id(identifier_system: str, key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{identifier_system}|{key}"))


def key_of(mapping: ResourceMapping, local_id: str) -> str:
    return f"{mapping.resource}/{mapping.identifier_prefix}/{local_id}"


def plan_push(records: Iterable[tuple[str, Any]], mappings: Mappings) -> list[PushItem]:
    items = [
        PushItem(concept, record, mapping, key_of(mapping, record.id))
        for concept, record in records
        for mapping in mappings.for_concept(concept)
    ]
    return sorted(items, key=lambda item: PUSH_ORDER.index(item.concept))


class _BundleReferences(StaticReferences):
    """Our records in this bundle are referenced through the builder's placeholders."""

    def __init__(
        self,
        base: StaticReferences,
        builder: TransactionBuilder,
        keys: Mapping[tuple[str, str], str],
        literal: Mapping[str, str],
    ) -> None:
        super().__init__(base.patients, base.members, base.server_ids)
        self._builder = builder
        self._keys = keys
        self._literal = literal

    def reference(self, concept: str, local_id: str) -> str:
        key = self._keys.get((concept, local_id))
        if key is None:
            return super().reference(concept, local_id)
        return self._literal.get(key) or self._builder.ref(key)


def build_transaction(
    items: list[PushItem],
    *,
    identifier_system: str,
    references: StaticReferences,
    terminology: Terminology,
    capabilities: Capabilities | None,
) -> TransactionBuilder:
    builder = TransactionBuilder()
    primary = {
        (item.concept, item.record.id): item.key
        for item in items
        if item.mapping.resource == PRIMARY_RESOURCE[item.concept]
    }
    searchable = {
        item.mapping.resource: _can_search_identifier(capabilities, item.mapping.resource)
        for item in items
    }
    literal = {
        item.key: f"{item.mapping.resource}/{client_assigned_id(identifier_system, item.key)}"
        for item in items
        if not searchable[item.mapping.resource]
    }
    refs = _BundleReferences(references, builder, primary, literal)
    ctx = MappingContext(identifier_system, refs, terminology)
    for item in items:
        resource = item.mapping.to_fhir(item.record, ctx)
        ensure_conformant(resource)
        identifier = f"{identifier_system}|{item.mapping.identifier_prefix}/{item.record.id}"
        if item.key in literal:
            resource["id"] = literal[item.key].split("/", 1)[1]
            builder.update(resource, key=item.key)
        else:
            builder.create(resource, key=item.key, if_none_exist={"identifier": identifier})
    return builder


def _can_search_identifier(capabilities: Capabilities | None, resource_type: str) -> bool:
    if capabilities is None:
        return True
    # Unknown counts as no: a client-assigned id is idempotent everywhere, a conditional create
    # on a server that ignores the criteria is not.
    return capabilities.supports_search_param(resource_type, "identifier") is Support.SUPPORTED


async def push(
    client: FhirClient,
    items: list[PushItem],
    *,
    identifier_system: str,
    references: StaticReferences,
    terminology: Terminology,
) -> PushResult:
    capabilities = await client.capabilities()
    builder = build_transaction(
        items,
        identifier_system=identifier_system,
        references=references,
        terminology=terminology,
        capabilities=capabilities,
    )
    if capabilities.transaction:
        outcome = await send_transaction(client, builder)
    else:
        outcome = await apply_individually(client, builder)
    result = PushResult()
    for entry in outcome:
        target = result.created if entry.created else result.unchanged
        target[entry.key] = entry.reference or ""
        result.versions[entry.key] = entry.version_id
    return result
