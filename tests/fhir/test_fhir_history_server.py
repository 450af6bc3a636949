"""Instance history against a real FHIR R4 server (sekmet)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

STEPS = ("accepted", "in-progress", "completed")


@pytest.fixture
async def fhir(fhir_server: LocalFhirServer) -> AsyncIterator[FhirClient]:
    async with FhirClient(fhir_server.base_url, max_retries=1) as client:
        yield client


async def _worked_task(fhir: FhirClient) -> list[str]:
    """A Task moved through every step; returns the version ids the server gave, in order."""
    task = await fhir.create({"resourceType": "Task", "status": "requested", "intent": "order"})
    assert task.resource is not None
    current = task.resource
    versions = [current["meta"]["versionId"]]
    for status in STEPS:
        result = await fhir.update({**current, "status": status})
        assert result.resource is not None
        current = result.resource
        versions.append(current["meta"]["versionId"])
    return [current["id"], *versions]


async def test_history_returns_every_version_oldest_first_across_pages(fhir: FhirClient) -> None:
    task_id, *versions = await _worked_task(fhir)

    history = await fhir.history("Task", task_id, count=2)

    assert [v["meta"]["versionId"] for v in history] == versions
    assert [v["status"] for v in history] == ["requested", *STEPS]


async def test_history_since_the_held_version_starts_with_it(fhir: FhirClient) -> None:
    task_id, *versions = await _worked_task(fhir)
    held = await fhir.vread("Task", task_id, versions[1])
    assert held.resource is not None

    history = await fhir.history("Task", task_id, since=held.resource["meta"]["lastUpdated"])

    assert [v["meta"]["versionId"] for v in history] == versions[1:]
