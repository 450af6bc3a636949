"""Capabilities: listed means yes or no; not listed means unknown (servers under-report)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from fhirbridge.fhir import Capabilities, FhirClient, Support

LoadJson = Callable[[str], dict[str, Any]]


@pytest.fixture
def capabilities(load_json: LoadJson) -> Capabilities:
    return Capabilities.from_statement(load_json("capability_statement.json"))


def test_lists_resource_types(capabilities: Capabilities) -> None:
    assert set(capabilities.resources) == {"CarePlan", "Encounter"}


def test_interactions_per_type(capabilities: Capabilities) -> None:
    assert capabilities.supports("CarePlan", "update") is Support.SUPPORTED
    assert capabilities.supports("Encounter", "create") is Support.UNSUPPORTED


def test_a_type_the_statement_does_not_list_is_unknown_not_unsupported(
    capabilities: Capabilities,
) -> None:
    assert capabilities.supports("Goal", "create") is Support.UNKNOWN
    assert capabilities.supports_conditional_create("Goal") is Support.UNKNOWN


def test_transaction_and_batch(capabilities: Capabilities) -> None:
    assert capabilities.transaction
    assert not capabilities.batch


def test_conditional_create_and_update(capabilities: Capabilities) -> None:
    assert capabilities.supports_conditional_create("CarePlan") is Support.SUPPORTED
    assert capabilities.supports_conditional_update("Encounter") is Support.UNSUPPORTED


def test_versioned_update(capabilities: Capabilities) -> None:
    assert capabilities.supports_versioned_update("CarePlan") is Support.SUPPORTED
    assert capabilities.supports_versioned_update("Encounter") is Support.UNSUPPORTED


def test_search_params_per_type(capabilities: Capabilities) -> None:
    assert capabilities.resources["CarePlan"].search_params == {"_id", "identifier", "patient"}
    assert capabilities.supports_search_param("Encounter", "identifier") is Support.UNSUPPORTED


def test_smart_token_url_from_security_extension(capabilities: Capabilities) -> None:
    assert capabilities.smart_token_url == "http://fhir.test/auth/token"


def test_an_empty_statement_knows_nothing() -> None:
    empty = Capabilities.from_statement({"resourceType": "CapabilityStatement"})

    assert not empty.transaction
    assert empty.supports("Patient", "read") is Support.UNKNOWN


@pytest.mark.anyio
async def test_client_reads_metadata_once(
    client: FhirClient, router: respx.MockRouter, load_json: LoadJson
) -> None:
    route = router.get("/metadata").mock(
        return_value=httpx.Response(200, json=load_json("capability_statement.json"))
    )

    first = await client.capabilities()
    second = await client.capabilities()

    assert first is second
    assert route.call_count == 1
