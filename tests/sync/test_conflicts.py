"""Conflicts are kept with both versions and resolved only by an explicit decision."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.persistence import (
    ConflictNotFound,
    ConflictReason,
    ConflictResolved,
    ConflictState,
    EntityKind,
    OutboxState,
    Resolution,
    Store,
    SyncTarget,
    make_engine,
    unit_of_work,
)
from fhirbridge.persistence.scratch import DatabaseUnavailable, scratch_database
from fhirbridge.sync.conflicts import MergedRecordMismatch, resolve_conflict
from tests.conftest import POSTGRES_URL
from tests.sessions import session_factory
from tests.sync.conftest import SyncWorld, now

PLAN = SyncTarget(EntityKind.CARE_PLAN, "cp-1001", "CarePlan")
DETECTED = datetime(2026, 10, 20, 14, 0, tzinfo=UTC)


def _plan(title: str, version: str) -> dict[str, Any]:
    return {"resourceType": "CarePlan", "id": "s-1", "meta": {"versionId": version}, "title": title}


# -- the repository ----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    try:
        with scratch_database(request.param, workdir=tmp_path, postgres_url=POSTGRES_URL) as url:
            engine = make_engine(url)
            yield session_factory(engine)
            engine.dispose()
    except DatabaseUnavailable as error:
        pytest.skip(f"PostgreSQL not reachable at {error.url} ({error.reason})")


def _store(session: Session) -> Store:
    return Store(session, clock=lambda: DETECTED)


def _record(store: Store, *, fields: list[str], remote_version: str = "3") -> int:
    return store.conflicts.record(
        target=PLAN,
        reason=ConflictReason.CONCURRENT_EDIT.value,
        fields=fields,
        local=_plan("Local title", "2"),
        remote=_plan("Server title", remote_version),
    )


def test_a_recorded_conflict_keeps_both_versions(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        conflict_id = _record(_store(session), fields=["title"])
    with unit_of_work(sessions) as session:
        conflict = _store(session).conflicts.get(conflict_id)

    assert conflict is not None
    assert (conflict.target, conflict.state, conflict.detected_at) == (
        PLAN,
        ConflictState.OPEN,
        DETECTED,
    )
    assert (conflict.local["title"], conflict.remote["title"]) == ("Local title", "Server title")
    assert conflict.remote_version == "3"


def test_detecting_the_same_disagreement_again_refreshes_the_open_conflict(
    sessions: sessionmaker[Session],
) -> None:
    with unit_of_work(sessions) as session:
        first = _record(_store(session), fields=["title"])
    with unit_of_work(sessions) as session:
        again = _record(_store(session), fields=["status"], remote_version="4")
        conflicts = _store(session).conflicts.open()

    assert again == first
    assert [(c.fields, c.remote_version) for c in conflicts] == [(["title", "status"], "4")]


def test_resolving_names_who_and_how(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        conflict_id = _record(_store(session), fields=["title"])
    with unit_of_work(sessions) as session:
        resolved = _store(session).conflicts.resolve(
            conflict_id, resolution=Resolution.KEEP_LOCAL, by="nina.okafor"
        )

    assert (resolved.state, resolved.resolution, resolved.resolved_by) == (
        ConflictState.RESOLVED,
        Resolution.KEEP_LOCAL,
        "nina.okafor",
    )
    assert resolved.resolved_at == DETECTED


def test_a_resolved_conflict_leaves_the_open_list_but_stays_on_the_record(
    sessions: sessionmaker[Session],
) -> None:
    with unit_of_work(sessions) as session:
        store = _store(session)
        conflict_id = _record(store, fields=["title"])
        store.conflicts.resolve(conflict_id, resolution=Resolution.TAKE_REMOTE, by="nina.okafor")
    with unit_of_work(sessions) as session:
        store = _store(session)
        assert store.conflicts.open() == []
        assert [c.id for c in store.conflicts.for_record(EntityKind.CARE_PLAN, "cp-1001")] == [
            conflict_id
        ]


def test_a_new_disagreement_after_resolution_opens_a_new_conflict(
    sessions: sessionmaker[Session],
) -> None:
    with unit_of_work(sessions) as session:
        store = _store(session)
        first = _record(store, fields=["title"])
        store.conflicts.resolve(first, resolution=Resolution.TAKE_REMOTE, by="nina.okafor")
        second = _record(store, fields=["title"], remote_version="5")

    assert second != first


def test_resolving_twice_is_refused(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        store = _store(session)
        conflict_id = _record(store, fields=["title"])
        store.conflicts.resolve(conflict_id, resolution=Resolution.TAKE_REMOTE, by="nina.okafor")
        with pytest.raises(ConflictResolved):
            store.conflicts.resolve(conflict_id, resolution=Resolution.KEEP_LOCAL, by="sam")


def test_resolving_an_unknown_conflict_is_refused(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session, pytest.raises(ConflictNotFound):
        _store(session).conflicts.resolve(404, resolution=Resolution.KEEP_LOCAL, by="sam")


def test_a_resolution_must_say_who_made_it(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        store = _store(session)
        conflict_id = _record(store, fields=["title"])
        with pytest.raises(ValueError, match="who"):
            store.conflicts.resolve(conflict_id, resolution=Resolution.KEEP_LOCAL, by=" ")


def test_sync_cursors_remember_the_latest_value(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        cursors = _store(session).cursors
        cursors.set("pull|x|CarePlan", "2026-10-20T14:00:00.000Z")
        cursors.set("pull|x|CarePlan", "2026-10-20T15:00:00.000Z")
    with unit_of_work(sessions) as session:
        cursors = _store(session).cursors
        assert cursors.get("pull|x|CarePlan") == "2026-10-20T15:00:00.000Z"
        assert cursors.get("pull|x|Task") is None


# -- resolving a concurrent edit pulled from the server ----------------------------------

pytest_integration = pytest.mark.integration


def _concurrent_edit(world: SyncWorld) -> tuple[int, dict[str, Any]]:
    with unit_of_work(world.sessions) as session:
        store = Store(session)
        plan = store.care_plans.require("cp-1001")
        plan.title = "Local title"
        store.save(plan)
    remote = world.edit(EntityKind.CARE_PLAN, "cp-1001", "CarePlan", {"title": "Server title"})
    (conflict_id,) = world.pull("CarePlan").conflict_ids
    return conflict_id, remote


def _resolve(world: SyncWorld, conflict_id: int, resolution: Resolution, **extra: Any) -> None:
    with unit_of_work(world.sessions) as session:
        resolve_conflict(
            store=Store(session),
            conflict_id=conflict_id,
            resolution=resolution,
            by="nina.okafor",
            mappings=world.mappings,
            identifier_system=world.system,
            now=now(),
            **extra,
        )


def _waiting(world: SyncWorld) -> list[SyncTarget]:
    return [e.target for e in world.outbox(OutboxState.PENDING, OutboxState.IN_FLIGHT)]


@pytest_integration
def test_keep_local_pushes_ours_based_on_the_remote_version(sync_world: SyncWorld) -> None:
    conflict_id, remote = _concurrent_edit(sync_world)

    _resolve(sync_world, conflict_id, Resolution.KEEP_LOCAL)

    link = sync_world.link(EntityKind.CARE_PLAN, "cp-1001", "CarePlan")
    assert (link.version_id, link.server_json) == (remote["meta"]["versionId"], remote)
    assert sync_world.record(EntityKind.CARE_PLAN, "cp-1001").title == "Local title"
    assert _waiting(sync_world) == [PLAN]


@pytest_integration
def test_take_remote_applies_the_server_value(sync_world: SyncWorld) -> None:
    conflict_id, remote = _concurrent_edit(sync_world)

    _resolve(sync_world, conflict_id, Resolution.TAKE_REMOTE)

    assert sync_world.record(EntityKind.CARE_PLAN, "cp-1001").title == "Server title"
    link = sync_world.link(EntityKind.CARE_PLAN, "cp-1001", "CarePlan")
    assert link.version_id == remote["meta"]["versionId"]


@pytest_integration
def test_manual_merge_is_saved_and_pushed(sync_world: SyncWorld) -> None:
    conflict_id, _ = _concurrent_edit(sync_world)
    merged = sync_world.record(EntityKind.CARE_PLAN, "cp-1001")
    merged.title = "Local title, reviewed with the EHR's"

    _resolve(sync_world, conflict_id, Resolution.MANUAL, merged=merged)

    assert sync_world.record(EntityKind.CARE_PLAN, "cp-1001").title == merged.title
    assert PLAN in _waiting(sync_world)


@pytest_integration
def test_a_manual_merge_of_another_record_is_refused(sync_world: SyncWorld) -> None:
    conflict_id, _ = _concurrent_edit(sync_world)
    other = sync_world.record(EntityKind.CARE_PLAN, "cp-1002")

    with pytest.raises(MergedRecordMismatch):
        _resolve(sync_world, conflict_id, Resolution.MANUAL, merged=other)


@pytest_integration
def test_resolution_is_recorded_with_who_decided(sync_world: SyncWorld) -> None:
    conflict_id, _ = _concurrent_edit(sync_world)

    _resolve(sync_world, conflict_id, Resolution.TAKE_REMOTE)

    with unit_of_work(sync_world.sessions) as session:
        conflict = Store(session).conflicts.get(conflict_id)
    assert conflict is not None
    assert (conflict.resolution, conflict.resolved_by) == (Resolution.TAKE_REMOTE, "nina.okafor")


@pytest_integration
def test_while_a_conflict_is_open_later_server_edits_refresh_it_instead_of_applying(
    sync_world: SyncWorld,
) -> None:
    conflict_id, _ = _concurrent_edit(sync_world)
    with unit_of_work(sync_world.sessions) as session:  # as the worker does after a 412
        outbox = Store(session).outbox
        for entry in outbox.claim(batch_size=10, worker_id="test"):
            outbox.mark_done(entry.id)
    newer = sync_world.edit(EntityKind.CARE_PLAN, "cp-1001", "CarePlan", {"title": "Newer title"})

    report = sync_world.pull("CarePlan")

    assert report.conflict_ids == [conflict_id]
    assert sync_world.record(EntityKind.CARE_PLAN, "cp-1001").title == "Local title"
    with unit_of_work(sync_world.sessions) as session:
        conflict = Store(session).conflicts.get(conflict_id)
    assert conflict is not None
    assert conflict.remote == newer
