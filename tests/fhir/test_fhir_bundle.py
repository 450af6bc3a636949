"""TransactionBuilder: keys before ids, placeholders resolved, responses read back per entry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from fhir_doubles import BASE, CreatingServer

from fhirbridge.fhir import (
    BundleBuildError,
    FhirClient,
    MalformedResponse,
    PartiallyApplied,
    TransactionBuilder,
    apply_individually,
    apply_transaction,
)

LoadJson = Callable[[str], dict[str, Any]]

PATIENT = {"resourceType": "Patient", "name": [{"family": "Doe"}]}


def goal_for(builder: TransactionBuilder, patient_key: str) -> dict[str, Any]:
    return {"resourceType": "Goal", "subject": {"reference": builder.ref(patient_key)}}


def test_new_entries_get_urn_uuid_full_urls_that_references_use() -> None:
    builder = TransactionBuilder()
    builder.create(PATIENT, key="patient")
    builder.create(goal_for(builder, "patient"), key="goal")

    entries = builder.build()["entry"]

    assert entries[0]["fullUrl"].startswith("urn:uuid:")
    assert entries[1]["resource"]["subject"]["reference"] == entries[0]["fullUrl"]


def test_a_reference_may_name_a_key_before_its_entry_is_added() -> None:
    builder = TransactionBuilder()
    builder.create(goal_for(builder, "patient"), key="goal")
    builder.create(PATIENT, key="patient")

    goal, patient = builder.build()["entry"]

    assert goal["resource"]["subject"]["reference"] == patient["fullUrl"]


def test_a_reference_to_a_key_without_an_entry_fails_the_build() -> None:
    builder = TransactionBuilder()
    builder.create(goal_for(builder, "nobody"), key="goal")

    with pytest.raises(BundleBuildError, match="nobody"):
        builder.build()


def test_references_to_an_update_entry_become_its_literal_reference() -> None:
    builder = TransactionBuilder()
    builder.update({**PATIENT, "id": "p1"}, key="patient", if_match="3")
    builder.create(goal_for(builder, "patient"), key="goal")

    patient, goal = builder.build()["entry"]

    assert goal["resource"]["subject"]["reference"] == "Patient/p1"
    assert patient["request"] == {"method": "PUT", "url": "Patient/p1", "ifMatch": 'W/"3"'}
    assert "fullUrl" not in patient


def test_requests_for_each_kind_of_entry() -> None:
    builder = TransactionBuilder()
    builder.create(PATIENT, if_none_exist={"identifier": "urn:sys|1"})
    builder.conditional_update(PATIENT, "identifier=urn:sys|2")

    requests = [e["request"] for e in builder.build()["entry"]]

    assert requests == [
        {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn%3Asys%7C1"},
        {"method": "PUT", "url": "Patient?identifier=urn:sys|2"},
    ]


def test_building_does_not_change_the_callers_resources() -> None:
    goal: dict[str, Any] = {"resourceType": "Goal", "subject": {"reference": "Patient/x"}}
    builder = TransactionBuilder()
    builder.create(goal)
    goal["subject"]["reference"] = "Patient/changed"

    assert builder.build()["entry"][0]["resource"]["subject"]["reference"] == "Patient/x"


def test_duplicate_keys_are_refused() -> None:
    builder = TransactionBuilder()
    builder.create(PATIENT, key="p")

    with pytest.raises(BundleBuildError, match="duplicate"):
        builder.create(PATIENT, key="p")


def test_response_entries_are_parsed_into_per_entry_results(load_json: LoadJson) -> None:
    builder = TransactionBuilder()
    builder.create(PATIENT, key="patient")
    builder.update({"resourceType": "Goal", "id": "g7"}, key="goal")
    builder.update({"resourceType": "Goal", "id": "g8"}, key="stale", if_match="1")

    result = builder.parse_response(load_json("transaction_response.json"))

    patient, goal, stale = result
    assert (patient.status, patient.reference, patient.version_id) == (201, "Patient/p1", "1")
    assert patient.last_modified == "2025-01-02T03:04:05.000Z"
    assert (goal.status, goal.id, goal.version_id, goal.etag) == (200, "g7", "4", 'W/"4"')
    assert stale.status == 412
    assert not stale.ok
    assert stale.outcome is not None
    assert stale.outcome.issues[0].diagnostics == "version moved on"
    assert result["goal"] is goal


def test_a_response_with_a_different_entry_count_is_malformed(load_json: LoadJson) -> None:
    builder = TransactionBuilder()
    builder.create(PATIENT)

    with pytest.raises(MalformedResponse, match="3 entries for 1 requests"):
        builder.parse_response(load_json("transaction_response.json"))


@pytest.mark.anyio
async def test_individual_application_creates_referenced_entries_first_and_rewrites_references(
    client: FhirClient, router: respx.MockRouter
) -> None:
    created = CreatingServer()
    router.post("/Patient").mock(side_effect=created)
    goals = router.post("/Goal").mock(side_effect=created)
    builder = TransactionBuilder()
    builder.create(goal_for(builder, "patient"), key="goal")
    builder.create(PATIENT, key="patient")

    result = await apply_individually(client, builder)

    sent_goal = json.loads(goals.calls.last.request.content)
    assert sent_goal["subject"]["reference"] == "Patient/id1"
    assert [r.key for r in result] == ["goal", "patient"]
    assert result["goal"].reference == "Goal/id2"


@pytest.mark.anyio
async def test_individual_application_reports_what_was_applied_before_a_failure(
    client: FhirClient, router: respx.MockRouter
) -> None:
    created = CreatingServer()
    router.post("/Patient").mock(side_effect=created)
    router.post("/Goal").mock(return_value=httpx.Response(422))
    builder = TransactionBuilder()
    builder.create(PATIENT, key="patient")
    builder.create(goal_for(builder, "patient"), key="goal")

    with pytest.raises(PartiallyApplied) as raised:
        await apply_individually(client, builder)

    assert [r.key for r in raised.value.applied] == ["patient"]
    assert raised.value.failed_key == "goal"
    assert raised.value.request.url == f"{BASE}/Goal"


@pytest.mark.anyio
async def test_entries_that_reference_each_other_cannot_be_applied_individually(
    client: FhirClient, router: respx.MockRouter
) -> None:
    builder = TransactionBuilder()
    builder.create(
        {"resourceType": "Goal", "addresses": [{"reference": builder.ref("b")}]}, key="a"
    )
    builder.create(
        {"resourceType": "Goal", "addresses": [{"reference": builder.ref("a")}]}, key="b"
    )

    with pytest.raises(BundleBuildError, match="cycle"):
        await apply_individually(client, builder)

    assert router.calls.call_count == 0


@pytest.mark.anyio
async def test_apply_transaction_falls_back_to_individual_requests_without_transaction_support(
    client: FhirClient, router: respx.MockRouter, load_json: LoadJson
) -> None:
    statement = load_json("capability_statement.json")
    statement["rest"][0]["interaction"] = []
    router.get("/metadata").mock(return_value=httpx.Response(200, json=statement))
    created = CreatingServer()
    patients = router.post("/Patient").mock(side_effect=created)
    bundles = router.post(BASE)
    builder = TransactionBuilder()
    builder.create(PATIENT, key="patient")

    result = await apply_transaction(client, builder)

    assert result["patient"].reference == "Patient/id1"
    assert patients.call_count == 1
    assert bundles.call_count == 0


@pytest.mark.anyio
async def test_apply_transaction_posts_one_bundle_when_transactions_are_supported(
    client: FhirClient, router: respx.MockRouter, load_json: LoadJson
) -> None:
    router.get("/metadata").mock(
        return_value=httpx.Response(200, json=load_json("capability_statement.json"))
    )
    bundles = router.post(BASE).mock(
        return_value=httpx.Response(200, json=load_json("transaction_response.json"))
    )
    builder = TransactionBuilder()
    builder.create(PATIENT, key="patient")
    builder.update({"resourceType": "Goal", "id": "g7"}, key="goal")
    builder.update({"resourceType": "Goal", "id": "g8"}, key="stale", if_match="1")

    result = await apply_transaction(client, builder)

    assert bundles.call_count == 1
    assert result["patient"].id == "p1"
