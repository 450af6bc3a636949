"""Discarding a dead letter: the entry leaves the outbox for good; only dead entries go."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.persistence import (
    EntityKind,
    OutboxEntryNotFound,
    OutboxState,
    OutboxStateError,
    SyncTarget,
    unit_of_work,
)
from fhirbridge.persistence.repositories import Outbox

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PLAN = SyncTarget(EntityKind.CARE_PLAN, "plan-1", "CarePlan")
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}


def _dead_letter(sessions: sessionmaker[Session]) -> int:
    with unit_of_work(sessions) as session:
        outbox = Outbox(session)
        entry_id = outbox.enqueue(PLAN, now=T0)
        outbox.claim(batch_size=1, worker_id="w1", now=T0)
        outbox.mark_failed(entry_id, transient=False, error="422", outcome=OUTCOME, now=T0)
    return entry_id


def test_discarding_a_dead_letter_removes_it_from_the_outbox(
    sessions: sessionmaker[Session],
) -> None:
    entry_id = _dead_letter(sessions)

    with unit_of_work(sessions) as session:
        Outbox(session).discard(entry_id)

    with unit_of_work(sessions) as session:
        outbox = Outbox(session)
        assert (outbox.get(entry_id), outbox.dead_letters()) == (None, [])


def test_discarding_returns_the_entry_with_the_servers_reason(
    sessions: sessionmaker[Session],
) -> None:
    entry_id = _dead_letter(sessions)

    with unit_of_work(sessions) as session:
        discarded = Outbox(session).discard(entry_id)

    assert (discarded.id, discarded.state, discarded.last_error, discarded.last_outcome) == (
        entry_id,
        OutboxState.DEAD,
        "422",
        OUTCOME,
    )


def test_discard_refuses_an_entry_that_is_not_dead(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        entry_id = Outbox(session).enqueue(PLAN, now=T0)

    with pytest.raises(OutboxStateError), unit_of_work(sessions) as session:
        Outbox(session).discard(entry_id)

    with unit_of_work(sessions) as session:
        kept = Outbox(session).get(entry_id)
    assert kept is not None
    assert kept.state is OutboxState.PENDING


def test_a_discarded_entry_cannot_be_discarded_again(sessions: sessionmaker[Session]) -> None:
    entry_id = _dead_letter(sessions)
    with unit_of_work(sessions) as session:
        Outbox(session).discard(entry_id)

    with pytest.raises(OutboxEntryNotFound), unit_of_work(sessions) as session:
        Outbox(session).discard(entry_id)
