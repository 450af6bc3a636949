"""Session-wide test infrastructure: a real local FHIR server and database URLs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhirbridge.localserver import LocalFhirServer

pytest_plugins = ["tests.servers.fixtures"]
# xdist workers start with COLUMNS=80 and LINES=24 in their environment, which rich freezes
# into the CLI's console when fhirbridge.cli is imported; without them the console reads the
# width per command, so a test can ask for a wide one (``env={"COLUMNS": "400"}``).
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SHARED_EXAMPLES = ROOT.parent / "shared" / "fhir-examples" / "r4"
POSTGRES_URL = os.environ.get(
    "FHIRBRIDGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFhirServer]:
    """One sekmet FHIR R4 server on 127.0.0.1 for the session (per xdist worker)."""
    server = LocalFhirServer(workdir=tmp_path_factory.mktemp("sekmet"))
    server.start()
    yield server
    server.stop()
