"""FHIR links: which server resource a local record is, and what the server last said."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.persistence import EntityKind, FhirLink, SyncTarget, unit_of_work
from fhirbridge.persistence.repositories import FhirLinks

SERVICE_REQUEST = FhirLink(
    entity_kind=EntityKind.REFERRAL,
    local_id="ref-food",
    resource_type="ServiceRequest",
    server_id="sr-9",
    synced_at=datetime(2025, 2, 5, 11, 0, 1, tzinfo=UTC),
    version_id="1",
    etag='W/"1"',
    content_hash="sha256:aa",
    server_json={"resourceType": "ServiceRequest", "id": "sr-9", "note": [{"text": "theirs"}]},
)
TASK = dataclasses.replace(SERVICE_REQUEST, resource_type="Task", server_id="t-4")


def _upsert(sessions: sessionmaker[Session], *links: FhirLink) -> None:
    with unit_of_work(sessions) as session:
        for link in links:
            FhirLinks(session).upsert(link)


def test_an_upserted_link_reads_back(sessions: sessionmaker[Session]) -> None:
    _upsert(sessions, SERVICE_REQUEST)
    with unit_of_work(sessions) as session:
        assert FhirLinks(session).get(SERVICE_REQUEST.target) == SERVICE_REQUEST


def test_upsert_replaces_the_version_seen_last(sessions: sessionmaker[Session]) -> None:
    newer = dataclasses.replace(
        SERVICE_REQUEST, version_id="2", etag='W/"2"', server_json={"resourceType": "X"}
    )
    _upsert(sessions, SERVICE_REQUEST)
    _upsert(sessions, newer)
    with unit_of_work(sessions) as session:
        assert FhirLinks(session).get(SERVICE_REQUEST.target) == newer


def test_upsert_within_one_session_is_visible_to_the_next_read(
    sessions: sessionmaker[Session],
) -> None:
    newer = dataclasses.replace(SERVICE_REQUEST, version_id="2")
    with unit_of_work(sessions) as session:
        links = FhirLinks(session)
        links.upsert(SERVICE_REQUEST)
        links.get(SERVICE_REQUEST.target)
        links.upsert(newer)
        assert links.get(SERVICE_REQUEST.target) == newer


def test_a_link_is_found_by_its_server_id(sessions: sessionmaker[Session]) -> None:
    _upsert(sessions, SERVICE_REQUEST, TASK)
    with unit_of_work(sessions) as session:
        assert FhirLinks(session).find_by_server_id("Task", "t-4") == TASK


def test_one_record_has_one_link_per_resource_type(sessions: sessionmaker[Session]) -> None:
    _upsert(sessions, SERVICE_REQUEST, TASK)
    with unit_of_work(sessions) as session:
        links = FhirLinks(session).for_record(EntityKind.REFERRAL, "ref-food")
    assert [link.reference for link in links] == ["ServiceRequest/sr-9", "Task/t-4"]


def test_an_unknown_target_has_no_link(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        found = FhirLinks(session).get(SyncTarget(EntityKind.GOAL, "g", "Goal"))
    assert found is None


def test_links_are_counted_per_resource_type(sessions: sessionmaker[Session]) -> None:
    now = datetime(2026, 10, 1, tzinfo=UTC)
    _upsert(
        sessions,
        FhirLink(EntityKind.REFERRAL, "r1", "ServiceRequest", "sr-1", now),
        FhirLink(EntityKind.REFERRAL, "r1", "Task", "task-1", now),
        FhirLink(EntityKind.CARE_TASK, "t1", "Task", "task-2", now),
    )

    with sessions() as session:
        assert FhirLinks(session).counts_by_type() == {"ServiceRequest": 1, "Task": 2}
