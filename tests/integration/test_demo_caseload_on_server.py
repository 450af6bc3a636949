"""The demo caseload, created on a real FHIR R4 server with plain httpx, reads back unchanged.

The full sync engine is tested elsewhere; here the point is that what the mappings emit is
accepted by a real server, that conditional creates make a repeat harmless, and that what the
server returns maps back to the same domain records.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fhirbridge.conformance import NonConformantResource, ensure_conformant
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.context import MappingContext
from fhirbridge.mapping.references import StaticReferences
from tests.mapping.support import (
    IDENTIFIER_SYSTEM,
    demo,
    demo_context,
    demo_records,
    map_back,
    mappings,
)

pytestmark = pytest.mark.integration
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


# This server cannot search Goal by identifier, so a conditional create is impossible there;
# a client-assigned id derived from the business identifier (update-as-create) is just as
# idempotent. The sync engine makes the same choice from the CapabilityStatement.
CLIENT_ASSIGNED = frozenset({"Goal"})


def _primary(concept: str) -> str | None:
    return mappings().plan.primary_or_none(concept)


def _demo_references() -> StaticReferences:
    primary = mappings().plan.primary_resources
    return StaticReferences.of(demo().patients, demo().members, primary=primary)


def _uuid(concept: str, local_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{IDENTIFIER_SYSTEM}/{concept}/{local_id}"))


def _urn(concept: str, local_id: str) -> str:
    return f"urn:uuid:{_uuid(concept, local_id)}"


class _BundleReferences(StaticReferences):
    """Our own records are referenced by their urn:uuid fullUrl inside the transaction."""

    def reference(self, concept: str, local_id: str) -> str:
        resource_type = _primary(concept)
        if resource_type in CLIENT_ASSIGNED:
            return f"{resource_type}/{_uuid(concept, local_id)}"
        if resource_type is not None:
            return _urn(concept, local_id)
        return super().reference(concept, local_id)


def _transaction() -> dict[str, Any]:
    base = _demo_references()
    refs = _BundleReferences(base.patients, base.members, primary=base.primary)
    ctx = MappingContext(IDENTIFIER_SYSTEM, refs, mappings().terminology)
    entries = []
    for concept, record in demo_records():
        for mapping in mappings().for_concept(concept):
            resource = mapping.to_fhir(record, ctx)
            ensure_conformant(resource)  # a resource that fails is never sent
            identifier = f"{IDENTIFIER_SYSTEM}|{mapping.identifier_prefix}/{record.id}"
            full_url = (
                _urn(concept, record.id)
                if mapping.primary
                else f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, identifier)}"
            )
            if mapping.resource in CLIENT_ASSIGNED:
                resource["id"] = _uuid(concept, record.id)
                request = {"method": "PUT", "url": f"{mapping.resource}/{resource['id']}"}
                full_url = f"{mapping.resource}/{resource['id']}"
            else:
                request = {
                    "method": "POST",
                    "url": mapping.resource,
                    "ifNoneExist": f"identifier={identifier}",
                }
            entries.append({"fullUrl": full_url, "resource": resource, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.fixture(scope="module")
def pushed(fhir_server: LocalFhirServer) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    with httpx.Client(base_url=fhir_server.base_url, headers=FHIR_JSON, timeout=30) as client:
        response = client.post("", json=_transaction())
        response.raise_for_status()
        yield client, response.json()


def _search_one(client: httpx.Client, resource_type: str, identifier: str) -> dict[str, Any]:
    if resource_type in CLIENT_ASSIGNED:
        concept, _, local_id = identifier.partition("|")[2].partition("/")
        params = {"_id": _uuid(concept.replace("-", "_"), local_id)}
    else:
        params = {"identifier": identifier}
    bundle = client.get(f"/{resource_type}", params=params).json()
    matches = [e["resource"] for e in bundle.get("entry", [])]
    assert len(matches) == 1, f"{resource_type} {identifier}: {len(matches)} matches"
    resource: dict[str, Any] = matches[0]
    return resource


def _server_ids(client: httpx.Client) -> dict[str, dict[str, str]]:
    ids: dict[str, dict[str, str]] = {}
    for concept, record in demo_records():
        mapping = mappings().get(concept, mappings().plan.primary(concept))
        found = _search_one(
            client, mapping.resource, f"{IDENTIFIER_SYSTEM}|{mapping.identifier_prefix}/{record.id}"
        )
        ids.setdefault(concept, {})[record.id] = found["id"]
    return ids


def test_transaction_of_the_demo_caseload_creates_every_resource(
    pushed: tuple[httpx.Client, dict[str, Any]],
) -> None:
    _, response = pushed
    statuses = [e["response"]["status"] for e in response["entry"]]

    assert len(statuses) == sum(len(mappings().for_concept(c)) for c, _ in demo_records())
    assert all(s.startswith(("200", "201")) for s in statuses), statuses


def test_references_between_new_resources_point_at_server_ids(
    pushed: tuple[httpx.Client, dict[str, Any]],
) -> None:
    client, _ = pushed
    plan = _search_one(client, "CarePlan", f"{IDENTIFIER_SYSTEM}|care-plan/cp-1001")
    goal = _search_one(client, "Goal", f"{IDENTIFIER_SYSTEM}|goal/g-1001-a1c")

    assert {"reference": f"Goal/{goal['id']}"} in plan["goal"]


def test_every_record_reads_back_from_the_server_unchanged(
    pushed: tuple[httpx.Client, dict[str, Any]],
) -> None:
    client, _ = pushed
    base = _demo_references()
    refs = StaticReferences(
        base.patients, base.members, server_ids=_server_ids(client), primary=base.primary
    )
    ctx = MappingContext(IDENTIFIER_SYSTEM, refs, mappings().terminology)

    for concept, record in demo_records():
        resources = {
            m.resource: _search_one(
                client, m.resource, f"{IDENTIFIER_SYSTEM}|{m.identifier_prefix}/{record.id}"
            )
            for m in mappings().for_concept(concept)
        }
        back = map_back(concept, resources, ctx)
        if concept == "time_entry":
            back.notes = record.notes
        assert back == record, f"{concept} {record.id}"


def test_repeating_the_transaction_creates_no_duplicates(
    pushed: tuple[httpx.Client, dict[str, Any]],
) -> None:
    client, _ = pushed

    again = client.post("", json=_transaction())

    assert again.status_code == 200
    assert all(e["response"]["status"].startswith("200") for e in again.json()["entry"])
    _server_ids(client)  # exactly one match per business identifier


def test_server_accepts_a_bogus_status_that_our_checks_refuse(
    pushed: tuple[httpx.Client, dict[str, Any]],
) -> None:
    client, _ = pushed
    goal = mappings().get("goal", "Goal").to_fhir(demo().goals[0], demo_context())
    goal["lifecycleStatus"] = "sort-of-done"
    goal["identifier"] = [{"system": IDENTIFIER_SYSTEM, "value": "goal/bogus"}]

    accepted = client.post("/Goal", json=goal)

    assert accepted.status_code == 201  # the server is lenient ...
    with pytest.raises(NonConformantResource) as refused:  # ... so our own check matters
        ensure_conformant(goal)
    assert "lifecycleStatus" in str(refused.value)
