"""The database refuses records that break the schema's rules, naming the rule."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from care_records import World
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.domain import CarePlan, CarePlanStatus, TimeEntry
from fhirbridge.persistence import ConstraintViolation, Record, Store, unit_of_work


@pytest.fixture
def people_saved(sessions: sessionmaker[Session], world: World) -> World:
    with unit_of_work(sessions) as session:
        store = Store(session)
        records: list[Record] = [
            *world.patient_links,
            *world.care_team_members,
            *world.enrollments,
        ]
        for record in records:
            store.save(record)
    return world


def _entry(world: World) -> TimeEntry:
    return dataclasses.replace(world.time_entries[0])


def test_negative_minutes_are_refused(sessions: sessionmaker[Session], people_saved: World) -> None:
    entry = dataclasses.replace(_entry(people_saved), minutes=-5)
    with pytest.raises(ConstraintViolation) as raised, unit_of_work(sessions) as session:
        Store(session).save(entry)
    assert "minutes_not_negative" in raised.value.constraint


def test_time_entry_ending_before_it_starts_is_refused(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    entry = _entry(people_saved)
    assert entry.start is not None
    entry = dataclasses.replace(entry, end=entry.start - timedelta(minutes=1))
    with pytest.raises(ConstraintViolation) as raised, unit_of_work(sessions) as session:
        Store(session).save(entry)
    assert "period" in raised.value.constraint


def test_record_of_an_unknown_patient_is_refused(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    entry = dataclasses.replace(_entry(people_saved), patient_id="nobody")
    with pytest.raises(ConstraintViolation) as raised, unit_of_work(sessions) as session:
        Store(session).save(entry)
    assert raised.value.local_id == "te-1"


def test_care_plan_listing_an_unknown_goal_is_refused_at_commit(
    sessions: sessionmaker[Session], people_saved: World
) -> None:
    plan = CarePlan(
        id="plan-x", patient_id="pat-1", status=CarePlanStatus.DRAFT, goal_ids=["no-such-goal"]
    )
    # The listed rows are checked at commit so a plan and its tasks can be saved in any order.
    with pytest.raises(IntegrityError), unit_of_work(sessions) as session:
        Store(session).save(plan)
    with unit_of_work(sessions) as session:
        assert Store(session).care_plans.get("plan-x") is None
