"""Error statuses become typed errors that keep the request and the server's OperationOutcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from fhir_doubles import BASE

from fhirbridge.fhir import (
    FhirClient,
    Forbidden,
    Gone,
    InvalidResource,
    MalformedResponse,
    NotFound,
    PreconditionFailed,
    StatusError,
    Unauthorized,
    VersionConflict,
)

pytestmark = pytest.mark.anyio

LoadJson = Callable[[str], dict[str, Any]]
GOAL = {"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active"}


async def test_412_on_if_match_update_is_a_version_conflict_with_the_outcome(
    client: FhirClient, router: respx.MockRouter, load_json: LoadJson
) -> None:
    outcome = load_json("outcome_version_conflict.json")
    route = router.put("/Goal/g1").mock(return_value=httpx.Response(412, json=outcome))

    with pytest.raises(VersionConflict) as raised:
        await client.update(GOAL, if_match="1")

    error = raised.value
    assert (error.resource, error.expected, error.status) == ("Goal/g1", "1", 412)
    assert error.outcome is not None
    assert error.outcome.issues[0].code == "conflict"
    assert route.calls.last.request.headers["If-Match"] == 'W/"1"'


async def test_409_on_if_match_update_is_a_version_conflict_too(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.put("/Goal/g1").mock(return_value=httpx.Response(409))

    with pytest.raises(VersionConflict) as raised:
        await client.update(GOAL, if_match='W/"4"')

    assert raised.value.expected == "4"


async def test_412_on_conditional_create_is_precondition_failed_not_a_version_conflict(
    client: FhirClient, router: respx.MockRouter, load_json: LoadJson
) -> None:
    outcome = load_json("outcome_multiple_matches.json")
    router.post("/Goal").mock(return_value=httpx.Response(412, json=outcome))

    with pytest.raises(PreconditionFailed) as raised:
        await client.create(GOAL, if_none_exist="identifier=urn:sys|42")

    assert not isinstance(raised.value, VersionConflict)
    assert raised.value.criteria == "identifier=urn:sys|42"
    assert raised.value.outcome is not None
    assert raised.value.outcome.issues[0].code == "multiple-matches"


async def test_412_on_conditional_update_is_precondition_failed(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.put("/Goal").mock(return_value=httpx.Response(412))

    with pytest.raises(PreconditionFailed) as raised:
        await client.conditional_update(GOAL, "identifier=urn:sys|42")

    assert raised.value.criteria == "identifier=urn:sys|42"


async def test_400_keeps_the_operation_outcome_issues(
    client: FhirClient, router: respx.MockRouter, load_json: LoadJson
) -> None:
    router.post("/Goal").mock(
        return_value=httpx.Response(400, json=load_json("outcome_invalid_goal.json"))
    )

    with pytest.raises(InvalidResource) as raised:
        await client.create(GOAL)

    assert raised.value.outcome is not None
    assert [i.expression for i in raised.value.outcome.issues] == [
        ("Goal.lifecycleStatus",),
        ("Goal.category[0]",),
    ]
    assert raised.value.request.method == "POST"


async def test_422_is_an_invalid_resource(client: FhirClient, router: respx.MockRouter) -> None:
    router.post("/Goal").mock(return_value=httpx.Response(422))

    with pytest.raises(InvalidResource):
        await client.create(GOAL)


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, Unauthorized), (403, Forbidden), (404, NotFound), (410, Gone)],
)
async def test_status_maps_to_its_error(
    client: FhirClient, router: respx.MockRouter, status: int, error: type[StatusError]
) -> None:
    router.get("/Goal/g1").mock(return_value=httpx.Response(status))

    with pytest.raises(error) as raised:
        await client.read("Goal", "g1")

    assert raised.value.status == status
    assert raised.value.request.url == f"{BASE}/Goal/g1"


async def test_an_html_error_page_still_gives_a_typed_error_without_outcome(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.get("/Goal/g1").mock(return_value=httpx.Response(404, text="<html>nope</html>"))

    with pytest.raises(NotFound) as raised:
        await client.read("Goal", "g1")

    assert raised.value.outcome is None


async def test_unlisted_status_is_a_plain_status_error(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.get("/Goal/g1").mock(return_value=httpx.Response(405))

    with pytest.raises(StatusError) as raised:
        await client.read("Goal", "g1")

    assert raised.value.status == 405


async def test_non_json_success_body_is_a_malformed_response(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.get("/Goal/g1").mock(return_value=httpx.Response(200, text="{not json"))

    with pytest.raises(MalformedResponse) as raised:
        await client.read("Goal", "g1")

    assert raised.value.request.url == f"{BASE}/Goal/g1"


async def test_wrong_resource_type_in_a_read_is_a_malformed_response(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.get("/Goal/g1").mock(
        return_value=httpx.Response(200, json={"resourceType": "Patient", "id": "g1"})
    )

    with pytest.raises(MalformedResponse, match="expected a Goal but got 'Patient'"):
        await client.read("Goal", "g1")


async def test_empty_read_body_is_a_malformed_response(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.get("/Goal/g1").mock(return_value=httpx.Response(200))

    with pytest.raises(MalformedResponse):
        await client.read("Goal", "g1")
