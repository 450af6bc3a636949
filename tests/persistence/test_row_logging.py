"""Fetched rows hold patient data: they never reach a log, even with SQLAlchemy's engine
logger at DEBUG (where it logs every row it fetches)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from fhirbridge.persistence import make_engine

MARKER = "zz-row-marker-7731"


def test_rows_fetched_at_debug_level_are_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'rows.db'}")
    with (
        caplog.at_level(logging.DEBUG, logger="sqlalchemy.engine"),
        engine.begin() as connection,
    ):
        connection.execute(text("CREATE TABLE notes (body TEXT)"))
        connection.execute(text("INSERT INTO notes VALUES (:body)"), {"body": MARKER})
        fetched = connection.execute(text("SELECT body FROM notes")).all()
    engine.dispose()
    assert fetched == [(MARKER,)]
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)
    assert MARKER not in caplog.text
