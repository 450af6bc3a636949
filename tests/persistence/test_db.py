"""Engines and the unit of work."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

import fhirbridge.persistence
from fhirbridge.domain import PatientLink
from fhirbridge.persistence import Store, make_engine, unit_of_work

PATIENT = PatientLink(id="pat-9", ehr_reference="Patient/ehr-9")


class Interrupted(Exception):
    pass


def _save_then_fail(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        Store(session).save(PATIENT)
        raise Interrupted


def test_unit_of_work_commits_at_the_end(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        Store(session).save(PATIENT)
    with unit_of_work(sessions) as session:
        assert Store(session).patients.get("pat-9") == PATIENT


def test_unit_of_work_rolls_back_on_an_exception(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(Interrupted):
        _save_then_fail(sessions)
    with unit_of_work(sessions) as session:
        assert Store(session).patients.get("pat-9") is None


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        pragmas = (
            connection.exec_driver_sql("PRAGMA foreign_keys").scalar(),
            connection.exec_driver_sql("PRAGMA journal_mode").scalar(),
        )
    assert pragmas == (1, "wal")


def test_postgresql_engines_use_the_schema_in_the_url(postgres_engine: Engine) -> None:
    with postgres_engine.connect() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar()
    assert str(schema).startswith("fb_")


def test_an_unsupported_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database backend"):
        make_engine("mysql://localhost/x")


def test_public_api_is_what_the_package_exports() -> None:
    exported = {name for name in dir(fhirbridge.persistence) if not name.startswith("_")}
    assert set(fhirbridge.persistence.__all__) <= exported


def test_a_pooled_postgresql_connection_that_died_while_idle_is_replaced(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with postgres_engine.connect() as connection:
        backend_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
    # As a server restart or a dropped idle connection would: the pool still holds it.
    with make_engine(postgres_engine.url.render_as_string(hide_password=False)).connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})
    monkeypatch.setattr(fhirbridge.persistence.db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with postgres_engine.connect() as connection:
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar() != backend_pid
