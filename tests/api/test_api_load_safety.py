"""Many care managers at once: no request fails because the database is busy.

Fifty requests arrive at the same moment against a real server (uvicorn on 127.0.0.1), each
from its own thread over its own connection, held at a barrier until all are ready: writes take
turns, reads do not wait for them, and none is answered 5xx. Reads are answered while another
process holds SQLite's write lock; a write that waits for it longer than the database allows is
answered 503 with Retry-After (nothing was written, so retrying is safe), never 500.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import fhirbridge.persistence.db
from fhirbridge.api.busy import install_busy_handler
from fhirbridge.persistence import DatabaseBusy
from fhirbridge.persistence.scratch import Backend
from tests.api.live_server import Send, at_once, served
from tests.api.support import Tokens, care_manager, count_rows, time_entry_body

ENTRIES = "/time-entries"
PATIENT_ENTRIES = "/patients/pat-north-1/time-entries"
WRITERS = 40
READERS = 10


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    with served(app) as url:
        yield url


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _slot(n: int) -> dict[str, str]:
    """The ``n``-th of 40 twenty-five-minute slots in October 2026 that do not overlap."""
    day, hour = 1 + n // 8, 8 + n % 8
    return {
        "start": f"2026-10-{day:02d}T{hour:02d}:00:00Z",
        "end": f"2026-10-{day:02d}T{hour:02d}:25:00Z",
    }


def _post(headers: dict[str, str], n: int) -> Send:
    # Half of them with an Idempotency-Key, whose record is written in the same transaction.
    keyed = {**headers, "Idempotency-Key": f"load-{n}"} if n % 2 else headers
    return lambda client: client.post(ENTRIES, json=time_entry_body(**_slot(n)), headers=keyed)


def _get(headers: dict[str, str], path: str) -> Send:
    return lambda client: client.get(path, headers=headers)


def test_fifty_requests_at_once_get_no_server_error_and_every_write_is_kept(
    base_url: str, nora: dict[str, str], database_url: str
) -> None:
    writes = [_post(nora, n) for n in range(WRITERS)]
    reads = [_get(nora, PATIENT_ENTRIES if n % 2 else "/worklist") for n in range(READERS)]
    responses = at_once(base_url, writes + reads, timeout=120)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * READERS + [201] * WRITERS
    assert count_rows(database_url, "time_entries") == WRITERS
    assert count_rows(database_url, "idempotency_records") == WRITERS // 2


@contextmanager
def _write_lock_held_by_another_process(database_url: str) -> Iterator[None]:
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's database-wide write lock
def test_reads_are_answered_while_another_process_holds_the_write_lock(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    client.post(ENTRIES, json=time_entry_body(), headers=nora)
    with _write_lock_held_by_another_process(database_url):
        entries = client.get(PATIENT_ENTRIES, headers=nora)
        worklist = client.get("/worklist", headers=nora)
    assert (entries.status_code, worklist.status_code) == (200, 200)
    assert len(entries.json()) == 1


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # The app's connections are opened on the first request, after this.
    monkeypatch.setattr(fhirbridge.persistence.db, "SQLITE_BUSY_TIMEOUT_MS", 50)


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's database-wide write lock
def test_a_write_kept_waiting_too_long_is_answered_503_with_retry_after_and_writes_nothing(
    short_busy_timeout: None, client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    with _write_lock_held_by_another_process(database_url):
        busy = client.post(ENTRIES, json=time_entry_body(), headers=nora)
    assert busy.status_code == 503, busy.text
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["type"].endswith("/database-busy")
    assert count_rows(database_url, "time_entries") == 0
    retried = client.post(ENTRIES, json=time_entry_body(), headers=nora)
    assert retried.status_code == 201, retried.text


def test_a_database_busy_escaping_a_route_is_answered_503_with_retry_after() -> None:
    # For routes that open a unit of work of their own rather than through RequestWork.
    api = FastAPI()
    install_busy_handler(api)

    @api.get("/own-unit-of-work")
    def own_unit_of_work() -> None:
        raise DatabaseBusy()

    with TestClient(api) as client:
        busy = client.get("/own-unit-of-work")
    assert busy.status_code == 503
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["type"].endswith("/database-busy")
