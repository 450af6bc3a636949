"""What the bulk tests share: fixture paths, mappings, scratch databases holding a caseload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bulk_support import BULK, DEMO, Sessions
from sqlalchemy import Engine

from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.config import Settings
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.persistence import (
    make_engine,
    migrate,
)
from fhirbridge.persistence.scratch import sqlite_url
from tests.sessions import session_factory


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def bulk_fixtures() -> Path:
    return BULK


@pytest.fixture(scope="session")
def mappings() -> Mappings:
    return load_mappings(Settings().mappings_dir)


@pytest.fixture(scope="session")
def demo_caseload() -> Caseload:
    return load_caseload(DEMO)


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[Callable[[], Sessions]]:
    """Makes migrated SQLite databases in ``tmp_path``; engines are disposed afterwards."""
    engines: list[Engine] = []

    def make() -> Sessions:
        url = sqlite_url(tmp_path / f"fhirbridge-{len(engines)}.db")
        migrate(url)
        engines.append(make_engine(url))
        return session_factory(engines[-1])

    yield make
    for engine in engines:
        engine.dispose()
