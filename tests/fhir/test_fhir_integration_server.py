"""The client against a real FHIR R4 server (sekmet, started once per test session)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fhirbridge.fhir import (
    FhirClient,
    Gone,
    NotFound,
    TransactionBuilder,
    VersionConflict,
    apply_individually,
    apply_transaction,
)
from fhirbridge.localserver import LocalFhirServer

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

LoadJson = Callable[[str], dict[str, Any]]


@pytest.fixture
async def fhir(fhir_server: LocalFhirServer) -> AsyncIterator[FhirClient]:
    async with FhirClient(fhir_server.base_url, max_retries=1) as client:
        yield client


@pytest.fixture
def system() -> str:
    """A fresh identifier system per test, so tests never see each other's resources."""
    return f"urn:fhirbridge:test:{uuid.uuid4()}"


def with_identifier(resource: dict[str, Any], system: str, value: str) -> dict[str, Any]:
    return {**resource, "identifier": [{"system": system, "value": value}]}


async def test_create_then_read_returns_the_stored_resource(
    fhir: FhirClient, load_json: LoadJson
) -> None:
    created = await fhir.create(load_json("goal.json"))

    assert created.id is not None
    read = await fhir.read("Goal", created.id)
    assert read.resource is not None
    assert read.resource["description"] == {"text": "Walk 30 minutes a day"}
    assert read.version_id == created.version_id == "1"


async def test_update_with_if_match_moves_the_version_and_vread_keeps_the_old_one(
    fhir: FhirClient, load_json: LoadJson
) -> None:
    created = await fhir.create(load_json("goal.json"))
    assert created.resource is not None
    assert created.version_id is not None

    changed = {**created.resource, "lifecycleStatus": "completed"}
    updated = await fhir.update(changed, if_match=created.version_id)

    assert updated.version_id == "2"
    assert created.id is not None
    old = await fhir.vread("Goal", created.id, "1")
    assert old.resource is not None
    assert old.resource["lifecycleStatus"] == "active"


async def test_update_with_a_stale_version_is_a_version_conflict(
    fhir: FhirClient, load_json: LoadJson
) -> None:
    created = await fhir.create(load_json("goal.json"))
    assert created.resource is not None
    assert created.version_id is not None
    await fhir.update({**created.resource, "lifecycleStatus": "on-hold"}, if_match="1")

    with pytest.raises(VersionConflict) as raised:
        await fhir.update({**created.resource, "lifecycleStatus": "cancelled"}, if_match="1")

    assert raised.value.resource == f"Goal/{created.id}"
    assert raised.value.expected == "1"
    assert raised.value.outcome is not None


async def test_conditional_create_twice_leaves_one_resource(
    fhir: FhirClient, load_json: LoadJson, system: str
) -> None:
    task = with_identifier(load_json("task.json"), system, "task-1")
    criteria = f"identifier={system}|task-1"

    first = await fhir.create(task, if_none_exist=criteria)
    second = await fhir.create(task, if_none_exist=criteria)

    assert (first.created, second.created) == (True, False)
    assert second.id == first.id
    matches = [r async for r in fhir.search("Task", {"identifier": f"{system}|task-1"})]
    assert [m["id"] for m in matches] == [first.id]


async def test_conditional_update_creates_then_updates_the_same_resource(
    fhir: FhirClient, load_json: LoadJson, system: str
) -> None:
    task = with_identifier(load_json("task.json"), system, "task-2")
    query = {"identifier": f"{system}|task-2"}

    first = await fhir.conditional_update(task, query)
    second = await fhir.conditional_update({**task, "status": "cancelled"}, query)

    assert second.id == first.id
    assert second.version_id == "2"


async def test_read_after_delete_is_gone(fhir: FhirClient, load_json: LoadJson) -> None:
    created = await fhir.create(load_json("task.json"))
    assert created.id is not None

    await fhir.delete("Task", created.id)

    with pytest.raises(Gone):
        await fhir.read("Task", created.id)


async def test_read_of_an_unknown_id_is_not_found(fhir: FhirClient) -> None:
    with pytest.raises(NotFound):
        await fhir.read("Task", f"unknown-{uuid.uuid4()}")


async def test_search_follows_next_links_over_several_pages(
    fhir: FhirClient, load_json: LoadJson, system: str
) -> None:
    for n in range(5):
        await fhir.create(with_identifier(load_json("task.json"), system, f"page-{n}"))

    pages = [p async for p in fhir.search_pages("Task", {"identifier": f"{system}|", "_count": 2})]
    found = [r async for r in fhir.search("Task", {"identifier": f"{system}|", "_count": 2})]

    assert len(pages) == 3
    assert sorted(r["identifier"][0]["value"] for r in found) == [f"page-{n}" for n in range(5)]


async def test_capabilities_report_transactions_and_leave_goal_unknown(fhir: FhirClient) -> None:
    capabilities = await fhir.capabilities()

    assert capabilities.transaction
    assert capabilities.resource("Task") is not None
    assert capabilities.resource("Goal") is None  # listed nowhere, yet sekmet stores Goals


def care_plan_bundle(load_json: LoadJson, system: str) -> TransactionBuilder:
    builder = TransactionBuilder()
    patient = with_identifier(load_json("patient.json"), system, "patient-1")
    goal = {**load_json("goal.json"), "subject": {"reference": builder.ref("patient")}}
    plan = {
        **load_json("careplan.json"),
        "subject": {"reference": builder.ref("patient")},
        "goal": [{"reference": builder.ref("goal")}],
    }
    builder.create(plan, key="plan")  # before the entries it references: keys resolve later
    builder.create(patient, key="patient", if_none_exist=f"identifier={system}|patient-1")
    builder.create(goal, key="goal")
    return builder


async def test_transaction_resolves_references_between_new_entries(
    fhir: FhirClient, load_json: LoadJson, system: str
) -> None:
    result = await apply_transaction(fhir, care_plan_bundle(load_json, system))

    assert [r.status for r in result] == [201, 201, 201]
    plan_id = result["plan"].id
    assert plan_id is not None
    plan = (await fhir.read("CarePlan", plan_id)).resource
    assert plan is not None
    assert plan["subject"]["reference"] == result["patient"].reference
    assert plan["goal"][0]["reference"] == result["goal"].reference


async def test_individual_fallback_resolves_the_same_references(
    fhir: FhirClient, load_json: LoadJson, system: str
) -> None:
    result = await apply_individually(fhir, care_plan_bundle(load_json, system))

    plan_id = result["plan"].id
    assert plan_id is not None
    plan = (await fhir.read("CarePlan", plan_id)).resource
    assert plan is not None
    assert plan["subject"]["reference"] == result["patient"].reference
    assert plan["goal"][0]["reference"] == result["goal"].reference
    assert all(r.version_id == "1" for r in result)
