"""Engines, sessions and the unit of work: the one place a transaction is committed.

Every session carries the mapping files' sync plan (``session.info["sync_plan"]``), so whoever
saves a record through ``Store`` gets its outbox entries right without naming FHIR types.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.mapping.plan import SyncPlan

SQLITE_BUSY_TIMEOUT_MS = 5_000
_SYNC_PLAN = "sync_plan"


def make_engine(url: str, **engine_options: Any) -> Engine:
    """An engine for a SQLite file or a PostgreSQL URL (``postgresql+psycopg://...``).

    PostgreSQL connection options such as a test schema travel in the URL, e.g.
    ``?options=-csearch_path%3Dfb_1234``.
    """
    backend = make_url(url).get_backend_name()
    # A statement that fails must not carry a patient's values into an exception message, and
    # from there into a log or a dead-letter reason.
    engine_options.setdefault("hide_parameters", True)
    if backend == "sqlite":
        engine = create_engine(url, **engine_options)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, **engine_options)
    raise ValueError(f"unsupported database backend {backend!r}; use sqlite or postgresql")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 driver, decide when a transaction begins (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads and later writes fails at once with "database is
        # locked" when another writer committed in between; busy_timeout does not help there.
        # Taking the write lock up front makes concurrent units of work wait their turn instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine, *, sync_plan: SyncPlan) -> sessionmaker[Session]:
    """Sessions on ``engine`` that know which resources each record syncs as (``sync_plan``,
    usually ``load_mappings(...).plan``)."""
    # Objects stay readable after the unit of work commits; nothing lazy-loads behind a caller.
    return sessionmaker(bind=engine, expire_on_commit=False, info={_SYNC_PLAN: sync_plan})


def sync_plan_of(session: Session) -> SyncPlan | None:
    """The plan the session's factory was given; None for a session made some other way."""
    plan = session.info.get(_SYNC_PLAN)
    return plan if isinstance(plan, SyncPlan) else None


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed once at the end, or rolled back on any exception.

    Repositories and services only flush; this is the only place that commits.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
