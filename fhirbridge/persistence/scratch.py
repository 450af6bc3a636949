"""Throwaway migrated databases for tests and demos: a SQLite file, or a PostgreSQL schema of
its own so parallel runs sharing one server never see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from fhirbridge.persistence.migrate import migrate

Backend = Literal["sqlite", "postgresql"]


class DatabaseUnavailable(RuntimeError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"database not reachable at {url}: {reason}")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def with_search_path(postgres_url: str, schema: str) -> str:
    """``postgres_url`` with every connection's search_path set to ``schema``."""
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def check_postgres(postgres_url: str) -> None:
    """Raise DatabaseUnavailable unless a connection to ``postgres_url`` can be opened."""
    engine = create_engine(postgres_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        shown = make_url(postgres_url).render_as_string(hide_password=True)
        raise DatabaseUnavailable(shown, type(error.orig).__name__) from error
    finally:
        engine.dispose()


@contextmanager
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A new, empty schema ``fb_<random>``; yields a URL that uses it and drops it afterwards."""
    schema = f"fb_{uuid.uuid4().hex}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield with_search_path(postgres_url, schema)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@contextmanager
def scratch_database(
    backend: Backend, *, workdir: Path, postgres_url: str | None = None
) -> Iterator[str]:
    """Yield the URL of a freshly migrated database; PostgreSQL ones are dropped afterwards.

    Dispose of engines made from the URL before leaving the block.
    """
    if backend == "sqlite":
        url = sqlite_url(workdir / f"fhirbridge-{uuid.uuid4().hex[:8]}.db")
        migrate(url)
        yield url
        return
    if postgres_url is None:
        raise ValueError("a PostgreSQL scratch database needs postgres_url")
    check_postgres(postgres_url)
    with postgres_schema(postgres_url) as url:
        migrate(url)
        yield url
