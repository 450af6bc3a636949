"""Content hashes: one per content, blind to server stamps, and links saved before hashes were
written with orjson are still recognised (an upgrade sends nothing again)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.caseload import load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.persistence import Store, make_engine, migrate, unit_of_work
from fhirbridge.sync import prepare, record, send, worker
from fhirbridge.sync.links import content_hash, same_content
from fhirbridge.sync.worker import PushStats, SyncWorker, WorkerOptions
from tests.sessions import session_factory, shipped_mappings

GOAL: dict[str, Any] = {
    "resourceType": "Goal",
    "id": "g-1",
    "meta": {"versionId": "3", "lastUpdated": "2024-03-01T10:00:00Z"},
    "lifecycleStatus": "active",
    "description": {"text": "HbA1c below 7 % — Zielwert"},
    "target": [{"detailQuantity": {"value": 7.0, "unit": "%"}, "dueDate": "2024-06-30"}],
    "subject": {"reference": "Patient/p-1"},
}


def old_content_hash(resource: dict[str, Any]) -> str:
    """The hash every link held before hashes were written with orjson, written out here."""
    body = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def test_the_hash_ignores_server_stamps_and_key_order() -> None:
    stamped = {**GOAL, "id": "other", "meta": {"versionId": "9"}}
    reordered = dict(reversed(list(GOAL.items())))

    assert content_hash(stamped) == content_hash(GOAL) == content_hash(reordered)
    assert content_hash(GOAL).startswith("sha256:")
    assert len(content_hash(GOAL)) == len("sha256:") + 64


def test_other_content_has_another_hash() -> None:
    changed = {**GOAL, "lifecycleStatus": "completed"}
    nested = {**GOAL, "target": [{"detailQuantity": {"value": 7.5, "unit": "%"}}]}

    assert len({content_hash(GOAL), content_hash(changed), content_hash(nested)}) == 3


def test_values_json_cannot_spell_are_hashed_as_their_text_as_before() -> None:
    # json.dumps(default=str) wrote str(value); so does the new hash (not orjson's ISO form).
    stamp = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    native = {"resourceType": "Basic", "when": stamp, "on": date(2024, 3, 1), "v": Decimal("1.50")}
    spelled = {"resourceType": "Basic", "when": str(stamp), "on": "2024-03-01", "v": "1.50"}

    assert content_hash(native) == content_hash(spelled)
    assert old_content_hash(native) == old_content_hash(spelled)


def test_what_orjson_cannot_write_still_gets_one_hash() -> None:
    huge = {"resourceType": "Basic", "count": 10**30}

    assert content_hash(huge) == content_hash(dict(huge)) == old_content_hash(huge)
    assert same_content(content_hash(huge), huge, content_hash(huge))


def test_a_hash_saved_before_the_upgrade_is_recognised() -> None:
    stored = old_content_hash(GOAL)
    changed = {**GOAL, "lifecycleStatus": "completed"}

    assert stored != content_hash(GOAL)
    assert same_content(stored, GOAL, content_hash(GOAL))
    assert not same_content(stored, changed, content_hash(changed))


def test_a_new_hash_is_compared_as_it_is() -> None:
    changed = {**GOAL, "lifecycleStatus": "completed"}

    assert same_content(content_hash(GOAL), GOAL, content_hash(GOAL))
    assert not same_content(content_hash(GOAL), changed, content_hash(changed))
    assert not same_content(None, GOAL, content_hash(GOAL))


# -- a push by the code before the upgrade, then one by the new code ------------------------


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'hash.db'}"
    migrate(url)
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()


def _save_caseload(sessions: sessionmaker[Session]) -> None:
    caseload = load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml")
    with unit_of_work(sessions) as session:
        store = Store(session)
        for item in (*caseload.patients, *caseload.members, *caseload.care_records()):
            store.save(item)


def _drain(sessions: sessionmaker[Session], base_url: str, system: str) -> PushStats:
    async def go() -> PushStats:
        async with FhirClient(base_url, max_retries=0) as client:
            pusher = SyncWorker(
                sessions=sessions,
                client=client,
                mappings=shipped_mappings(),
                identifier_system=system,
                worker_id="hash-test",
                options=WorkerOptions(batch_size=10),
            )
            return await pusher.drain()

    return anyio.run(go)


@pytest.mark.integration
def test_links_saved_before_the_upgrade_send_nothing_again(
    sessions: sessionmaker[Session], fhir_server: LocalFhirServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = "urn:fhirbridge:hash-upgrade"
    _save_caseload(sessions)
    with monkeypatch.context() as old_code:  # the push before the upgrade hashed this way
        for module in (prepare, record, send, worker):
            old_code.setattr(module, "content_hash", old_content_hash)
        first = _drain(sessions, fhir_server.base_url, system)
    with sessions() as session:
        stored = list(session.execute(text("SELECT content_hash FROM fhir_links")).scalars())
    assert (first.pushed - first.incomplete, first.dead) == (27, 0)
    assert stored
    assert not any(h.startswith("sha256:") for h in stored)

    _save_caseload(sessions)  # every record enqueued again, content unchanged
    again = _drain(sessions, fhir_server.base_url, system)

    assert (again.pushed, again.unchanged, again.dead) == (0, 27, 0)
