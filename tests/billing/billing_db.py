"""Throwaway databases for the billing tests: one migrated SQLite file or PostgreSQL schema per
test module and backend, emptied before each use, and helpers to fill it with care records.

PostgreSQL runs skip (with the reason) when the server is not reachable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.billing.period import entry_interval, month_interval
from fhirbridge.domain import CareTeamMember, PatientLink, StaffRole, TimeEntry
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.persistence.scratch import Backend, DatabaseUnavailable, scratch_database
from fhirbridge.persistence.tables import metadata
from tests.conftest import POSTGRES_URL
from tests.sessions import session_factory

BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")


@contextmanager
def billing_database(backend: Backend, workdir: Path) -> Iterator[sessionmaker[Session]]:
    """A session factory over a freshly migrated database of ``backend``."""
    try:
        with scratch_database(backend, workdir=workdir, postgres_url=POSTGRES_URL) as url:
            engine = make_engine(url)
            try:
                yield session_factory(engine)
            finally:
                engine.dispose()
    except DatabaseUnavailable as error:
        pytest.skip(f"PostgreSQL not reachable at {error.url} ({error.reason})")


def empty(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        for table in reversed(metadata.sorted_tables):
            session.execute(delete(table))


def people(patient_ids: Iterable[str], staff_ids: Iterable[str]) -> list[Any]:
    patients: list[Any] = [PatientLink(id=p, ehr_reference=f"Patient/ehr-{p}") for p in patient_ids]
    staff = [CareTeamMember(id=s, name=s, role=StaffRole.RN) for s in staff_ids]
    return [*patients, *staff]


def store_all(sessions: sessionmaker[Session], records: Iterable[Any]) -> None:
    with unit_of_work(sessions) as session:
        store = Store(session)
        for record in records:
            store.save(record)


def of_the_month(
    entries: Iterable[TimeEntry], month: tuple[int, int], tz: ZoneInfo
) -> list[TimeEntry]:
    """The entries a month's roll-up is about: started in the month or with minutes in it."""
    span = month_interval(*month, tz)
    chosen = []
    for entry in entries:
        if entry.start is None:
            continue
        interval = entry_interval(entry, tz)
        starts_inside = span.contains(entry.start.astimezone(span.start.tzinfo))
        if starts_inside or (interval is not None and interval.clip(span) is not None):
            chosen.append(entry)
    return chosen
