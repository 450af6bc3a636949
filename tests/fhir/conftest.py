"""Fixtures for the FHIR client tests: a mocked transport, a recording sleep, fixture loading."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fhir_doubles import BASE, RecordingSleep

from fhirbridge.fhir import Backoff, FhirClient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def load_json(fixtures_dir: Path) -> Callable[[str], dict[str, Any]]:
    def load(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((fixtures_dir / "fhir" / name).read_text())
        return data

    return load


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def router() -> respx.MockRouter:
    """respx routes served through the client's transport: no global patching, no network."""
    return respx.MockRouter(base_url=BASE, assert_all_called=False, assert_all_mocked=True)


@pytest.fixture
def transport(router: respx.MockRouter) -> httpx.MockTransport:
    return httpx.MockTransport(router.async_handler)


@pytest.fixture
async def client(
    transport: httpx.MockTransport, sleep: RecordingSleep
) -> AsyncIterator[FhirClient]:
    async with FhirClient(
        BASE,
        transport=transport,
        max_retries=3,
        backoff=Backoff(initial=0.5, maximum=10.0, jitter=0.25),
        sleep=sleep,
    ) as fhir:
        yield fhir
