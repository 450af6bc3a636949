"""Writes return the resource with its version facts, taken from whichever source has them."""

from __future__ import annotations

import httpx
import pytest
import respx

from fhirbridge.fhir import FhirClient

pytestmark = pytest.mark.anyio

NEW_GOAL = {"resourceType": "Goal", "lifecycleStatus": "active", "description": {"text": "x"}}


async def test_create_returns_resource_version_etag_and_location(
    client: FhirClient, router: respx.MockRouter
) -> None:
    stored = {**NEW_GOAL, "id": "g9", "meta": {"versionId": "1"}}
    router.post("/Goal").mock(
        return_value=httpx.Response(
            201,
            json=stored,
            headers={"ETag": 'W/"1"', "Location": "http://fhir.test/fhir/Goal/g9/_history/1"},
        )
    )

    result = await client.create(NEW_GOAL)

    assert (result.created, result.id, result.version_id) == (True, "g9", "1")
    assert result.etag == 'W/"1"'
    assert result.reference == "Goal/g9"


async def test_create_asks_for_the_representation_in_fhir_json(
    client: FhirClient, router: respx.MockRouter
) -> None:
    route = router.post("/Goal").mock(
        return_value=httpx.Response(201, json={**NEW_GOAL, "id": "1"})
    )

    await client.create(NEW_GOAL)

    sent = route.calls.last.request
    assert sent.headers["Prefer"] == "return=representation"
    assert sent.headers["Content-Type"] == "application/fhir+json"


async def test_create_without_a_body_takes_id_and_version_from_location(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.post("/Goal").mock(
        return_value=httpx.Response(201, headers={"Location": "Goal/g9/_history/3"})
    )

    result = await client.create(NEW_GOAL)

    assert result.resource is None
    assert (result.id, result.version_id, result.reference) == ("g9", "3", "Goal/g9")


async def test_update_answering_with_an_operation_outcome_keeps_it_as_outcome(
    client: FhirClient, router: respx.MockRouter
) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational"}],
    }
    router.put("/Goal/g1").mock(
        return_value=httpx.Response(200, json=outcome, headers={"ETag": 'W/"5"'})
    )

    result = await client.update({**NEW_GOAL, "id": "g1"})

    assert result.resource is None
    assert result.outcome is not None
    assert result.version_id == "5"


async def test_conditional_create_sends_if_none_exist(
    client: FhirClient, router: respx.MockRouter
) -> None:
    route = router.post("/Goal").mock(
        return_value=httpx.Response(200, json={**NEW_GOAL, "id": "1"})
    )

    result = await client.create(NEW_GOAL, if_none_exist="identifier=urn:sys|42")

    assert route.calls.last.request.headers["If-None-Exist"] == "identifier=urn:sys|42"
    assert not result.created


async def test_ids_that_would_change_the_path_are_refused_before_sending(
    client: FhirClient, router: respx.MockRouter
) -> None:
    with pytest.raises(ValueError, match="not a FHIR id"):
        await client.read("Goal", "../metadata")

    assert router.calls.call_count == 0
