"""Retry policy: transient failures of idempotent requests are retried, honouring Retry-After."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from fhir_doubles import BASE, RecordingSleep

from fhirbridge.fhir import (
    Backoff,
    FhirClient,
    RateLimited,
    ServerError,
    TransportError,
)

pytestmark = pytest.mark.anyio

TASK = {"resourceType": "Task", "id": "t1", "status": "requested", "intent": "order"}


async def test_429_with_retry_after_seconds_waits_that_long(
    client: FhirClient, router: respx.MockRouter, sleep: RecordingSleep
) -> None:
    router.get("/Task/t1").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, json=TASK),
        ]
    )

    result = await client.read("Task", "t1")

    assert result.resource == TASK
    assert sleep.waits == [7.0]


async def test_429_with_retry_after_http_date_waits_until_that_date_by_the_servers_clock(
    client: FhirClient, router: respx.MockRouter, sleep: RecordingSleep
) -> None:
    limited = httpx.Response(
        429,
        headers={
            "Date": "Wed, 21 Oct 2026 07:28:00 GMT",
            "Retry-After": "Wed, 21 Oct 2026 07:28:12 GMT",
        },
    )
    router.get("/Task/t1").mock(side_effect=[limited, httpx.Response(200, json=TASK)])

    await client.read("Task", "t1")

    assert sleep.waits == [12.0]


async def test_503_then_success_returns_the_resource_after_one_backoff(
    client: FhirClient, router: respx.MockRouter, sleep: RecordingSleep
) -> None:
    route = router.get("/Task/t1").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=TASK)]
    )

    result = await client.read("Task", "t1")

    assert result.resource == TASK
    assert route.call_count == 2
    assert len(sleep.waits) == 1
    assert 0.5 <= sleep.waits[0] <= 0.75  # initial + jitter


async def test_backoff_grows_exponentially_between_attempts(
    client: FhirClient, router: respx.MockRouter, sleep: RecordingSleep
) -> None:
    router.get("/Task/t1").mock(
        side_effect=[httpx.Response(502)] * 3 + [httpx.Response(200, json=TASK)]
    )

    await client.read("Task", "t1")

    assert len(sleep.waits) == 3
    for attempt, wait in enumerate(sleep.waits):
        assert 0.5 * 2**attempt <= wait <= 0.5 * 2**attempt + 0.25


async def test_timeouts_then_success_returns_the_resource(
    client: FhirClient, router: respx.MockRouter
) -> None:
    route = router.get("/Task/t1").mock(
        side_effect=[httpx.ConnectTimeout, httpx.ReadTimeout, httpx.Response(200, json=TASK)]
    )

    result = await client.read("Task", "t1")

    assert result.resource == TASK
    assert route.call_count == 3


async def test_exhausted_retry_budget_raises_the_last_error_with_its_request(
    client: FhirClient, router: respx.MockRouter
) -> None:
    route = router.get("/Task/t1").mock(return_value=httpx.Response(504))

    with pytest.raises(ServerError) as raised:
        await client.read("Task", "t1")

    assert raised.value.status == 504
    assert raised.value.request.method == "GET"
    assert raised.value.request.url == f"{BASE}/Task/t1"
    assert route.call_count == 4  # the first attempt and max_retries=3 retries


async def test_exhausted_retries_on_connection_errors_raise_transport_error(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.get("/Task/t1").mock(side_effect=httpx.ConnectError)

    with pytest.raises(TransportError) as raised:
        await client.read("Task", "t1")

    assert raised.value.request.url == f"{BASE}/Task/t1"
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


async def test_500_is_not_retried(client: FhirClient, router: respx.MockRouter) -> None:
    route = router.get("/Task/t1").mock(return_value=httpx.Response(500))

    with pytest.raises(ServerError):
        await client.read("Task", "t1")

    assert route.call_count == 1


async def test_plain_create_is_not_retried_after_a_503(
    client: FhirClient, router: respx.MockRouter
) -> None:
    route = router.post("/Task").mock(return_value=httpx.Response(503))

    with pytest.raises(ServerError):
        await client.create({"resourceType": "Task", "status": "requested", "intent": "order"})

    assert route.call_count == 1


async def test_plain_create_is_not_retried_after_a_timeout(
    client: FhirClient, router: respx.MockRouter
) -> None:
    route = router.post("/Task").mock(side_effect=httpx.ReadTimeout)

    with pytest.raises(TransportError):
        await client.create({"resourceType": "Task", "status": "requested", "intent": "order"})

    assert route.call_count == 1


async def test_conditional_create_is_retried(client: FhirClient, router: respx.MockRouter) -> None:
    route = router.post("/Task").mock(
        side_effect=[httpx.ReadTimeout, httpx.Response(201, json=TASK)]
    )

    result = await client.create(TASK, if_none_exist="identifier=urn:sys|1")

    assert result.created
    assert route.call_count == 2


async def test_transaction_with_a_plain_create_is_not_retried(
    client: FhirClient, router: respx.MockRouter
) -> None:
    route = router.post(BASE).mock(return_value=httpx.Response(503))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": TASK, "request": {"method": "POST", "url": "Task"}}],
    }

    with pytest.raises(ServerError):
        await client.transaction(bundle)

    assert route.call_count == 1


async def test_transaction_of_conditional_creates_and_updates_is_retried(
    client: FhirClient, router: respx.MockRouter, load_json: Callable[[str], dict[str, Any]]
) -> None:
    response = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}
    route = router.post(BASE).mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=response)]
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": TASK,
                "request": {"method": "POST", "url": "Task", "ifNoneExist": "identifier=a|b"},
            },
            {"resource": TASK, "request": {"method": "PUT", "url": "Task/t1"}},
        ],
    }

    await client.transaction(bundle)

    assert route.call_count == 2


async def test_retry_after_beyond_the_limit_is_raised_without_waiting(
    transport: httpx.MockTransport, router: respx.MockRouter, sleep: RecordingSleep
) -> None:
    router.get("/Task/t1").mock(return_value=httpx.Response(429, headers={"Retry-After": "600"}))
    backoff = Backoff(max_retry_after=120)

    async with FhirClient(BASE, transport=transport, backoff=backoff, sleep=sleep) as fhir:
        with pytest.raises(RateLimited) as raised:
            await fhir.read("Task", "t1")

    assert raised.value.retry_after == 600.0
    assert sleep.waits == []


async def test_no_retries_when_max_retries_is_zero(
    transport: httpx.MockTransport, router: respx.MockRouter, sleep: RecordingSleep
) -> None:
    route = router.get("/Task/t1").mock(return_value=httpx.Response(503))

    async with FhirClient(BASE, transport=transport, max_retries=0, sleep=sleep) as fhir:
        with pytest.raises(ServerError):
            await fhir.read("Task", "t1")

    assert route.call_count == 1


async def test_retry_after_date_in_the_past_retries_at_once(
    client: FhirClient, router: respx.MockRouter, sleep: RecordingSleep
) -> None:
    limited = httpx.Response(429, headers={"Retry-After": "Thu, 01 Jan 2015 00:00:00 GMT"})
    router.get("/Task/t1").mock(side_effect=[limited, httpx.Response(200, json=TASK)])

    await client.read("Task", "t1")

    assert sleep.waits == [0.0]


async def test_503_retry_after_is_honoured_too(
    client: FhirClient, router: respx.MockRouter, sleep: RecordingSleep
) -> None:
    unavailable = httpx.Response(503, headers={"Retry-After": "3"})
    router.get("/Task/t1").mock(side_effect=[unavailable, httpx.Response(200, json=TASK)])

    await client.read("Task", "t1")

    assert sleep.waits == [3.0]
