"""Instance history: every version of one resource, oldest first, version ids left opaque."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from fhirbridge.fhir import FhirClient, NotFound, StatusError

pytestmark = pytest.mark.anyio

LoadJson = Callable[[str], dict[str, Any]]
HISTORY = "/Task/cbo-task-19/_history"


@pytest.fixture
def history_pages(router: respx.MockRouter, load_json: LoadJson) -> respx.Route:
    router.get(HISTORY, params={"_count": "2", "_offset": "2"}).mock(
        return_value=httpx.Response(200, json=load_json("history_page2.json"))
    )
    return router.get(HISTORY).mock(
        return_value=httpx.Response(200, json=load_json("history_page1.json"))
    )


async def test_history_reads_every_page_and_returns_versions_oldest_first(
    client: FhirClient, history_pages: respx.Route
) -> None:
    versions = await client.history("Task", "cbo-task-19")

    assert [v["status"] for v in versions] == ["requested", "accepted", "in-progress", "completed"]


async def test_history_leaves_deletions_out(
    client: FhirClient, router: respx.MockRouter, load_json: LoadJson
) -> None:
    page = load_json("history_page1.json")
    del page["link"][1]  # the first page only: it holds a deletion between two versions
    router.get(HISTORY).mock(return_value=httpx.Response(200, json=page))

    versions = await client.history("Task", "cbo-task-19")

    assert [v["meta"]["versionId"][:8] for v in versions] == ["9b2f7c1e", "e0c4d6a2"]


async def test_history_asks_for_versions_since_an_instant_in_pages_of_count(
    client: FhirClient, history_pages: respx.Route
) -> None:
    await client.history("Task", "cbo-task-19", since="2026-10-13T11:00:00.000Z", count=2)

    query = history_pages.calls[0].request.url.params
    assert (query["_since"], query["_count"]) == ("2026-10-13T11:00:00.000Z", "2")


async def test_history_orders_by_last_updated_not_by_the_servers_listing(
    client: FhirClient, router: respx.MockRouter, load_json: LoadJson
) -> None:
    page = load_json("history_page2.json")
    page["entry"].reverse()  # a server listing oldest first
    router.get(HISTORY).mock(return_value=httpx.Response(200, json=page))

    versions = await client.history("Task", "cbo-task-19")

    assert [v["status"] for v in versions] == ["requested", "accepted"]


@pytest.mark.parametrize(("status", "error"), [(404, NotFound), (405, StatusError)])
async def test_a_server_without_history_answers_with_its_error(
    client: FhirClient, router: respx.MockRouter, status: int, error: type[Exception]
) -> None:
    router.get(HISTORY).mock(return_value=httpx.Response(status))

    with pytest.raises(error):
        await client.history("Task", "cbo-task-19")
