"""Migrated throwaway databases for any test: ``migrated_database("sqlite" | "postgresql", dir)``.

tests/persistence/conftest.py uses one PostgreSQL schema per test session (per xdist worker),
emptied before each test with ``empty_database``, because migrating a schema per test costs
more than half a second; SQLite gets a fresh file per test.

PostgreSQL databases live in a schema of their own (``fb_<uuid>``, set as search_path in the
URL) that is dropped afterwards, so xdist workers and other test modules never collide. When
PostgreSQL is not reachable the test is skipped with the reason.

Outside tests/persistence, build the same fixture from the package function::

    from fhirbridge.persistence.scratch import scratch_database

    @pytest.fixture(params=["sqlite", "postgresql"])
    def db_url(request, tmp_path):
        with scratch_database(request.param, workdir=tmp_path, postgres_url=PG) as url:
            yield url
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import delete

from fhirbridge.persistence import make_engine
from fhirbridge.persistence.scratch import Backend, DatabaseUnavailable, scratch_database
from fhirbridge.persistence.tables import metadata

BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")
# Same default as tests/conftest.py's POSTGRES_URL.
POSTGRES_URL = os.environ.get(
    "FHIRBRIDGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def migrated_database(backend: Backend, workdir: Path) -> Iterator[str]:
    """Yield the URL of an empty database migrated to head; skip if PostgreSQL is down."""
    try:
        with scratch_database(backend, workdir=workdir, postgres_url=POSTGRES_URL) as url:
            yield url
    except DatabaseUnavailable as error:
        pytest.skip(f"PostgreSQL not reachable at {error.url} ({error.reason})")


def empty_database(url: str) -> None:
    """Delete every row, children first: a migrated database reused from test to test."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(delete(table))
    finally:
        engine.dispose()
