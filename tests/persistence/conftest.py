"""Every persistence test runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from care_records import World, load_world
from dbs import BACKENDS, empty_database, migrated_database
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.persistence import make_engine
from tests.sessions import session_factory


@pytest.fixture(scope="session")
def postgres_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated schema for the test session (per xdist worker); skips if PG is down."""
    with migrated_database("postgresql", tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    empty_database(postgres_database)
    return postgres_database


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    with migrated_database("sqlite", tmp_path) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty migrated database: each test runs once per backend."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "postgres_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def world(fixtures_dir: Path) -> World:
    return load_world(fixtures_dir / "persistence" / "care_records.yaml")
