"""Search follows next links lazily: a page is fetched only when the previous one is used up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from fhirbridge.fhir import FhirClient, MalformedResponse

pytestmark = pytest.mark.anyio

LoadJson = Callable[[str], dict[str, Any]]


@pytest.fixture
def pages(router: respx.MockRouter, load_json: LoadJson) -> list[respx.Route]:
    return [
        router.get("/Task", params={"status": "requested", "_count": "2", "_offset": offset}).mock(
            return_value=httpx.Response(200, json=load_json(f"searchset_page{n}.json"))
        )
        for n, offset in ((2, "2"), (3, "4"))
    ] + [
        router.get("/Task", params={"status": "requested", "_count": "2"}).mock(
            return_value=httpx.Response(200, json=load_json("searchset_page1.json"))
        )
    ]


async def test_search_yields_matches_from_every_page(
    client: FhirClient, pages: list[respx.Route]
) -> None:
    ids = [r["id"] async for r in client.search("Task", {"status": "requested", "_count": 2})]

    assert ids == ["t1", "t2", "t3", "t4", "t5"]


async def test_search_fetches_the_next_page_only_when_needed(
    client: FhirClient, router: respx.MockRouter, pages: list[respx.Route]
) -> None:
    results = client.search("Task", {"status": "requested", "_count": 2})

    first = [await anext(results), await anext(results)]
    requests_after_first_page = router.calls.call_count
    third = await anext(results)

    assert [r["id"] for r in first] == ["t1", "t2"]
    assert requests_after_first_page == 1
    assert third["id"] == "t3"
    assert router.calls.call_count == 2
    await results.aclose()


async def test_search_pages_yield_whole_bundles_with_included_resources(
    client: FhirClient, pages: list[respx.Route]
) -> None:
    bundles = [b async for b in client.search_pages("Task", {"status": "requested", "_count": 2})]

    assert len(bundles) == 3
    modes = [e["search"]["mode"] for e in bundles[0]["entry"]]
    assert modes == ["match", "match", "include"]


async def test_search_bundle_returns_only_the_first_page(
    client: FhirClient, router: respx.MockRouter, pages: list[respx.Route]
) -> None:
    bundle = await client.search_bundle("Task", [("status", "requested"), ("_count", "2")])

    assert bundle["type"] == "searchset"
    assert router.calls.call_count == 1


async def test_a_next_link_to_another_server_is_refused(
    client: FhirClient, router: respx.MockRouter
) -> None:
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": "http://elsewhere.test/fhir/Task?page=2"}],
    }
    router.get("/Task").mock(return_value=httpx.Response(200, json=page))

    with pytest.raises(MalformedResponse, match="next link leaves the server"):
        [r async for r in client.search("Task")]


async def test_a_next_link_back_to_an_earlier_page_is_refused(
    client: FhirClient, router: respx.MockRouter
) -> None:
    looping = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": "http://fhir.test/fhir/Task?page=2"}],
    }
    router.get("/Task").mock(return_value=httpx.Response(200, json=looping))

    with pytest.raises(MalformedResponse, match="repeats an earlier page"):
        [r async for r in client.search("Task")]


async def test_a_search_answering_with_a_non_bundle_is_malformed(
    client: FhirClient, router: respx.MockRouter
) -> None:
    router.get("/Task").mock(return_value=httpx.Response(200, json={"resourceType": "Task"}))

    with pytest.raises(MalformedResponse):
        await client.search_bundle("Task")
