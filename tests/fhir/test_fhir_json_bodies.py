"""Request and response bodies: written and read fast (orjson), and what only the standard
library handles is still written and read as before."""

from __future__ import annotations

import json
import math

import httpx
import pytest
import respx

from fhirbridge.fhir import FhirClient, MalformedResponse

pytestmark = pytest.mark.anyio

GOAL = {"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active"}


async def test_a_body_is_sent_as_json_and_the_answer_read_back(
    client: FhirClient, router: respx.MockRouter
) -> None:
    goal = {**GOAL, "note": [{"text": "Zielwert erreicht — 7 %"}]}
    route = router.put("/Goal/g1").mock(return_value=httpx.Response(200, json=goal))

    result = await client.update(goal)

    assert json.loads(route.calls.last.request.content) == goal
    assert result.resource == goal


async def test_what_orjson_cannot_write_is_sent_as_the_standard_library_writes_it(
    client: FhirClient, router: respx.MockRouter
) -> None:
    goal = {**GOAL, "extension": [{"url": "urn:x", "valueInteger64": 10**30}]}
    route = router.put("/Goal/g1").mock(return_value=httpx.Response(200, json=GOAL))

    await client.update(goal)

    assert route.calls.last.request.content == json.dumps(goal).encode()


async def test_an_answer_in_another_charset_is_read_as_httpx_reads_it(
    client: FhirClient, router: respx.MockRouter
) -> None:
    goal = {**GOAL, "note": [{"text": "Zielwert ä"}]}
    body = json.dumps(goal, ensure_ascii=False).encode("utf-16")
    headers = {"Content-Type": "application/fhir+json; charset=utf-16"}
    router.get("/Goal/g1").mock(return_value=httpx.Response(200, content=body, headers=headers))

    result = await client.read("Goal", "g1")

    assert result.resource == goal


async def test_json_only_the_standard_library_accepts_is_still_read(
    client: FhirClient, router: respx.MockRouter
) -> None:
    body = b'{"resourceType": "Goal", "id": "g1", "extension": [{"valueDecimal": NaN}]}'
    router.get("/Goal/g1").mock(return_value=httpx.Response(200, content=body))

    result = await client.read("Goal", "g1")

    assert result.resource is not None
    assert math.isnan(result.resource["extension"][0]["valueDecimal"])


async def test_a_body_that_is_no_json_is_still_a_malformed_response(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.get("/Goal/g1").mock(return_value=httpx.Response(200, content=b"\xff{oops"))

    with pytest.raises(MalformedResponse, match="not JSON"):
        await client.read("Goal", "g1")
