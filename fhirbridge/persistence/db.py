"""Engines, sessions and the unit of work: the one place a transaction is committed.

Every session carries the mapping files' sync plan (``session.info["sync_plan"]``), so whoever
saves a record through ``Store`` gets its outbox entries right without naming FHIR types.

Two kinds of unit of work:

- ``unit_of_work(factory)``: may write. On SQLite it takes the database's one write lock when
  it begins (``BEGIN IMMEDIATE``) and keeps it until it ends, which is what serializes writers
  and what ``repositories._locks`` relies on. Writers of one process queue on a lock before
  asking SQLite (``_write_turns``), so a busy API does not leave them to SQLite's polling.
- ``unit_of_work(factory, read_only=True)``: reads only. On SQLite it begins deferred and
  never takes the write lock, so reads go on while a writer works (WAL); on PostgreSQL the
  transaction is ``READ ONLY``. A write in it fails on both backends.

When the database stays locked for longer than ``SQLITE_BUSY_TIMEOUT_MS`` (or no pooled
connection frees up in time), the unit of work raises ``DatabaseBusy``: a condition to retry
later, not a fault.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, Pool, QueuePool, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.mapping.plan import SyncPlan
from fhirbridge.persistence.errors import PersistenceError

SQLITE_BUSY_TIMEOUT_MS = 5_000
# anyio runs FastAPI's sync routes on at most 40 threads; with as many connections none of
# them waits for the pool. PostgreSQL's default limit of 100 connections leaves room for a
# second worker process and the sync worker.
DEFAULT_POOL_SIZE = 20
DEFAULT_MAX_OVERFLOW = 20
_SYNC_PLAN = "sync_plan"
_READ_ONLY = "fhirbridge_read_only"  # execution option the SQLite begin listener reads
_QUERY_ONLY = "fhirbridge_query_only"  # connection record: PRAGMA query_only is on
_SQLITE_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# A pooled PostgreSQL connection unused for this long is asked whether it is still alive before
# it is handed out (see _ping_when_idle).
PING_AFTER_IDLE_SECONDS = 5.0
_CHECKED_IN = "fhirbridge_checked_in"  # connection record: when it went back to the pool

# What the layers above persistence hold to open units of work, without naming SQLAlchemy.
SessionFactory: TypeAlias = sessionmaker[Session]


class DatabaseBusy(PersistenceError):
    """The database stayed locked by other writers, or every pooled connection stayed in use,
    for longer than the wait allowed; nothing was written. Retrying later is safe."""

    def __init__(self) -> None:
        super().__init__("the database is busy; nothing was written, retry later")


# One writing unit of work of a process at a time per SQLite engine. SQLite lets one
# transaction write at a time anyway; its busy handler makes the others poll with growing
# sleeps, so under load late arrivals overtake long waiters. Waiting on a lock here instead
# hands the write lock over as soon as it is released. Other processes (the CLI, a sync worker)
# still meet SQLite's own lock and busy timeout.
_write_turns: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()


def backend_of(url: str) -> str:
    """The backend ``url`` names: sqlite, postgresql, or another that make_engine refuses."""
    return make_url(url).get_backend_name()


def make_engine(
    url: str,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    max_overflow: int = DEFAULT_MAX_OVERFLOW,
    **engine_options: Any,
) -> Engine:
    """An engine for a SQLite file or a PostgreSQL URL (``postgresql+psycopg://...``).

    PostgreSQL connection options such as a test schema travel in the URL, e.g.
    ``?options=-csearch_path%3Dfb_1234``. ``pool_size`` connections are kept open, up to
    ``max_overflow`` more are opened under load (an in-memory SQLite database has one
    connection per thread instead).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    # A statement that fails must not carry a patient's values into an exception message, and
    # from there into a log or a dead-letter reason.
    engine_options.setdefault("hide_parameters", True)
    _drop_logged_rows()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database backend {backend!r}; use sqlite or postgresql")
    if _pooled(parsed, engine_options.get("poolclass")):
        engine_options.setdefault("pool_size", pool_size)
        engine_options.setdefault("max_overflow", max_overflow)
    if backend == "sqlite":
        engine = create_engine(url, **engine_options)
        _configure_sqlite(engine)
        _write_turns[engine] = threading.Lock()
        return engine
    engine = create_engine(url, **engine_options)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Hand out only live connections without a round trip per checkout.

    SQLAlchemy's ``pool_pre_ping`` asks the server before every checkout: one more round trip
    on every request of a busy API, whose connections went back to the pool milliseconds ago.
    Here only a connection that sat unused for ``PING_AFTER_IDLE_SECONDS`` is asked (where a
    restarted server or a dropped idle connection shows); when it does not answer, every pooled
    connection is replaced, as with pre-ping. A connection that dies while in busy use fails
    the statement it runs, and that disconnect makes SQLAlchemy replace the pool as well.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            # The pool retries the checkout with a new connection.
            raise InvalidatePoolError("a pooled connection did not answer a ping") from error


def _pooled(url: URL, pool_class: type[Pool] | None) -> bool:
    """Whether the engine keeps a queue of connections (what SQLAlchemy picks unless told):
    PostgreSQL and SQLite files do; an in-memory SQLite database has one per thread."""
    if pool_class is not None:
        return issubclass(pool_class, QueuePool)
    if url.get_backend_name() != "sqlite":
        return True
    in_memory = url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    return not in_memory


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
        read_only = bool(connection.get_execution_options().get(_READ_ONLY))
        record = connection.info
        if record.get(_QUERY_ONLY, False) != read_only:
            # A write in a read-only unit of work fails ("attempt to write a readonly
            # database") instead of quietly taking the write lock after all.
            connection.exec_driver_sql(f"PRAGMA query_only={int(read_only)}")
            record[_QUERY_ONLY] = read_only
        if read_only:
            # Deferred: a reader never takes the write lock, and in WAL mode it reads the last
            # committed state while a writer works.
            connection.exec_driver_sql("BEGIN")
            return
        # A deferred transaction that reads and later writes fails at once with "database is
        # locked" when another writer committed in between; busy_timeout does not help there.
        # Taking the write lock up front makes concurrent units of work wait their turn instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine, *, sync_plan: SyncPlan) -> sessionmaker[Session]:
    """Sessions on ``engine`` that know which resources each record syncs as (``sync_plan``,
    usually ``load_mappings(...).plan``)."""
    # Objects stay readable after the unit of work commits; nothing lazy-loads behind a caller.
    return sessionmaker(bind=engine, expire_on_commit=False, info={_SYNC_PLAN: sync_plan})


def ping(factory: sessionmaker[Session]) -> None:
    """Raise unless the database answers a trivial query (a health check)."""
    with unit_of_work(factory, read_only=True) as session:
        session.execute(text("SELECT 1"))


def sync_plan_of(session: Session) -> SyncPlan | None:
    """The plan the session's factory was given; None for a session made some other way."""
    plan = session.info.get(_SYNC_PLAN)
    return plan if isinstance(plan, SyncPlan) else None


@contextmanager
def unit_of_work(factory: sessionmaker[Session], *, read_only: bool = False) -> Iterator[Session]:
    """A session whose work is committed once at the end, or rolled back on any exception.

    Repositories and services only flush; this is the only place that commits. With
    ``read_only`` the session reads only (see the module doc): use it for every request or
    job that writes nothing, so it neither waits for nor holds up writers.

    Raises ``DatabaseBusy`` when the database stays locked (SQLite) or no connection frees up
    for longer than the wait allowed.
    """
    bind = factory.kw.get("bind")
    turns = _write_turns.get(bind) if isinstance(bind, Engine) and not read_only else None
    if turns is not None and not turns.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
        raise DatabaseBusy()
    try:
        with _busy_is_retryable():
            session = factory()
            try:
                if read_only:
                    session.connection(execution_options=_read_only_options(session))
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
    finally:
        if turns is not None:
            turns.release()


def _read_only_options(session: Session) -> dict[str, Any]:
    if session.get_bind().dialect.name == "postgresql":
        return {"postgresql_readonly": True}
    return {_READ_ONLY: True}


@contextmanager
def _busy_is_retryable() -> Iterator[None]:
    try:
        yield
    except PoolTimeout as error:
        raise DatabaseBusy() from error
    except OperationalError as error:
        code = getattr(error.orig, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_BUSY:
            raise DatabaseBusy() from error
        raise


class _NoRows(logging.Filter):
    """SQLAlchemy logs every fetched row when its engine logger is at DEBUG; rows hold patient
    data, which never goes to a log (hide_parameters covers statements' parameters only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in ("Row %r", "Col %r")


_ROWS_FILTER = _NoRows()


def _drop_logged_rows() -> None:
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    if _ROWS_FILTER not in engine_logger.filters:
        engine_logger.addFilter(_ROWS_FILTER)
