"""Sync status for admins: the outbox by state, dead letters with the server's reason (retry or
discard, audited),
and open conflicts with both versions side by side, resolved as ``sync.conflicts`` resolves
them. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from fhirbridge.config import Settings
from fhirbridge.persistence import (
    EntityKind,
    OutboxState,
    Store,
    SyncTarget,
    make_engine,
    unit_of_work,
)
from fhirbridge.persistence.scratch import Backend
from fhirbridge.services.dead_letters import DISCARDED
from tests.sessions import session_factory
from tests.web.conftest import ADA, NORA, Browser, sign_in
from tests.worklist_caseload import load_worklist

REFUSED = {
    "resourceType": "OperationOutcome",
    "issue": [
        {"severity": "error", "code": "invariant", "diagnostics": "Goal.target.due is invalid"}
    ],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def worklist_caseload(database_url: str) -> None:
    load_worklist(database_url)


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> Browser:
    return sign_in(client, settings, ADA)


@pytest.fixture
def dead_letter(database_url: str) -> int:
    """One entry the server refused for good, with its OperationOutcome."""
    engine = make_engine(database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            store = Store(session)
            entry = store.outbox.claim(batch_size=1, worker_id="test")[0]
            store.outbox.mark_failed(
                entry.id, transient=False, error="HTTP 422 from the server", outcome=REFUSED
            )
            return entry.id
    finally:
        engine.dispose()


@pytest.fixture
def server_conflict(database_url: str) -> int:
    """A concurrent edit of a task on the server: both versions, the server's with its id and
    version, as a pull records it."""
    engine = make_engine(database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            return Store(session).conflicts.record(
                target=SyncTarget(EntityKind.CARE_TASK, "task-wl-stat", "Task"),
                reason="concurrent-edit",
                fields=["description"],
                local={"resourceType": "Task", "description": "Review the statins"},
                remote={
                    "resourceType": "Task",
                    "id": "srv-task-1",
                    "meta": {"versionId": "4"},
                    "description": "Review the statins and the inhaler",
                },
            )

    finally:
        engine.dispose()


def _count(html: str, state: OutboxState) -> int:
    found = re.search(rf'id="outbox-{state.value}">(\d+)<', html)
    assert found is not None
    return int(found.group(1))


def test_an_admin_sees_the_outbox_by_state(ada: Browser, database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            counts = Store(session).outbox.counts()
    finally:
        engine.dispose()

    page = ada.client.get("/app/sync").text

    assert {state: _count(page, state) for state in OutboxState} == counts


def test_a_dead_letter_shows_the_servers_reason(ada: Browser, dead_letter: int) -> None:
    page = ada.client.get("/app/sync").text

    assert "HTTP 422 from the server" in page
    assert "Goal.target.due is invalid" in page
    assert f'action="/app/sync/dead-letters/{dead_letter}/retry"' in page


def test_retrying_a_dead_letter_queues_it_again(ada: Browser, dead_letter: int) -> None:
    dead_before = _count(ada.client.get("/app/sync").text, OutboxState.DEAD)

    retried = ada.post(f"/app/sync/dead-letters/{dead_letter}/retry")

    assert retried.status_code == 303
    page = ada.client.get(retried.headers["location"]).text
    assert _count(page, OutboxState.DEAD) == dead_before - 1
    assert "The entry will be pushed again." in page


def test_an_open_conflict_shows_both_versions_side_by_side(ada: Browser) -> None:
    page = ada.client.get("/app/sync").text

    assert "goal goal-wl-low as Goal: concurrent-edit (description)" in page
    assert 'aria-label="Local version"' in page
    assert 'aria-label="Remote version"' in page
    assert 'value="keep-local"' in page
    assert 'value="take-remote"' in page


def test_both_versions_are_shown_as_recorded(ada: Browser, server_conflict: int) -> None:
    page = ada.client.get("/app/sync").text

    assert "Review the statins and the inhaler" in page
    assert "remote, version 4" in page


def test_keeping_the_local_version_resolves_the_conflict(
    ada: Browser, server_conflict: int
) -> None:
    resolved = ada.post(f"/app/sync/conflicts/{server_conflict}", {"resolution": "keep-local"})

    assert resolved.status_code == 303
    after = ada.client.get(resolved.headers["location"]).text
    assert "Conflict resolved." in after
    assert f'id="conflict-{server_conflict}"' not in after


def test_a_conflict_resolved_already_is_not_resolved_twice(
    ada: Browser, server_conflict: int
) -> None:
    ada.post(f"/app/sync/conflicts/{server_conflict}", {"resolution": "keep-local"})

    again = ada.post(f"/app/sync/conflicts/{server_conflict}", {"resolution": "take-remote"})

    assert again.headers["location"] == "/app/sync?message=already-resolved"


def test_sync_status_is_for_admins_only(client: TestClient, settings: Settings) -> None:
    nora = sign_in(client, settings, NORA)

    assert nora.client.get("/app/sync").status_code == 403
    assert nora.post("/app/sync/conflicts/1", {"resolution": "keep-local"}).status_code == 403


def test_resolving_without_the_csrf_token_is_refused(ada: Browser) -> None:
    response = ada.client.post("/app/sync/conflicts/1", data={"resolution": "keep-local"})

    assert response.status_code == 403


def test_a_dead_letter_offers_discard_next_to_retry(ada: Browser, dead_letter: int) -> None:
    page = ada.client.get("/app/sync").text

    assert f'action="/app/sync/dead-letters/{dead_letter}/discard"' in page


def test_discarding_a_dead_letter_takes_it_out_of_the_outbox(
    ada: Browser, dead_letter: int
) -> None:
    dead_before = _count(ada.client.get("/app/sync").text, OutboxState.DEAD)

    discarded = ada.post(f"/app/sync/dead-letters/{dead_letter}/discard")

    assert discarded.status_code == 303
    page = ada.client.get(discarded.headers["location"]).text
    assert _count(page, OutboxState.DEAD) == dead_before - 1
    assert "The entry was discarded" in page
    assert f"/app/sync/dead-letters/{dead_letter}/" not in page


def test_a_discard_is_audited_with_who_and_the_servers_reason(
    ada: Browser, dead_letter: int, database_url: str
) -> None:
    engine = make_engine(database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            entry = Store(session).outbox.get(dead_letter)
        assert entry is not None

        ada.post(f"/app/sync/dead-letters/{dead_letter}/discard")

        with unit_of_work(session_factory(engine)) as session:
            events = Store(session).audit.for_record(entry.entity_kind, entry.local_id)
    finally:
        engine.dispose()
    (event,) = [e for e in events if e.action == DISCARDED]
    assert event.actor == ADA.id
    assert event.after is None
    assert event.before is not None
    assert event.before["outbox_entry"] == dead_letter
    assert event.before["reason"] == "HTTP 422 from the server"
    assert event.before["server_outcome"] == REFUSED


def test_a_dead_letter_discarded_already_is_not_discarded_twice(
    ada: Browser, dead_letter: int
) -> None:
    ada.post(f"/app/sync/dead-letters/{dead_letter}/discard")

    again = ada.post(f"/app/sync/dead-letters/{dead_letter}/discard")

    assert again.headers["location"] == "/app/sync?message=already-discarded"


def test_a_retried_dead_letter_is_not_discarded(ada: Browser, dead_letter: int) -> None:
    ada.post(f"/app/sync/dead-letters/{dead_letter}/retry")

    refused = ada.post(f"/app/sync/dead-letters/{dead_letter}/discard")

    assert refused.headers["location"] == "/app/sync?message=already-retried"
    page = ada.client.get("/app/sync").text
    assert _count(page, OutboxState.PENDING) >= 1


def test_discarding_is_for_admins_only(
    client: TestClient, settings: Settings, dead_letter: int
) -> None:
    nora = sign_in(client, settings, NORA)

    assert nora.post(f"/app/sync/dead-letters/{dead_letter}/discard").status_code == 403


def test_discarding_without_the_csrf_token_is_refused(ada: Browser, dead_letter: int) -> None:
    response = ada.client.post(f"/app/sync/dead-letters/{dead_letter}/discard")

    assert response.status_code == 403
    assert f'action="/app/sync/dead-letters/{dead_letter}/discard"' in (
        ada.client.get("/app/sync").text
    )
