"""Care plans read many at a time (the push reads a batch) come back as they do one by one."""

from __future__ import annotations

import dataclasses

from care_records import World
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.domain import CarePlan
from fhirbridge.persistence import Store, unit_of_work


def test_many_plans_read_back_with_every_list_in_its_own_order(
    sessions: sessionmaker[Session], world: World
) -> None:
    plan = world.one("plan-1")
    assert isinstance(plan, CarePlan)
    # Lists of more than one member, so that their order is worth checking.
    assert len(plan.goal_ids) > 1
    assert len(plan.task_ids) > 1
    reversed_plan = dataclasses.replace(
        plan,
        id="plan-2",
        goal_ids=list(reversed(plan.goal_ids)),
        task_ids=list(reversed(plan.task_ids)),
        referral_ids=list(reversed(plan.referral_ids)),
        contributor_ids=list(reversed(plan.contributor_ids)),
    )
    empty_plan = dataclasses.replace(
        plan, id="plan-3", goal_ids=[], task_ids=[], referral_ids=[], contributor_ids=[]
    )
    with unit_of_work(sessions) as session:
        store = Store(session)
        world.save_all(store)
        store.care_plans.save(reversed_plan)
        store.care_plans.save(empty_plan)
    with unit_of_work(sessions) as session:
        many = Store(session).care_plans.get_many(["plan-1", "plan-2", "plan-3", "missing"])
    assert many == {"plan-1": plan, "plan-2": reversed_plan, "plan-3": empty_plan}
