"""Shared helpers for the probe tests: fixtures of a faked server, and running a probe."""

from __future__ import annotations

import json
from typing import Any

import anyio

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.fhir import FhirClient
from fhirbridge.probe import ProbeOptions, ProbeReport, probe_server

BASE = "http://127.0.0.1:9/fhir"
PROBE_FIXTURES = PROJECT_ROOT / "fixtures" / "probe"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PROBE_FIXTURES / name).read_text())
    return loaded


def probe(base_url: str, options: ProbeOptions | None = None) -> ProbeReport:
    """Probe ``base_url`` with a client that does not retry (faults show at once)."""

    async def go() -> ProbeReport:
        async with FhirClient(base_url, max_retries=0, timeout=10.0) as client:
            return await probe_server(client, options)

    return anyio.run(go)
