"""Care plans, with their goals, tasks, referrals and contributors kept in order in link tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from fhirbridge.domain import CarePlan, CarePlanStatus
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import Repository
from fhirbridge.persistence.tables import (
    CarePlanContributorRow,
    CarePlanGoalRow,
    CarePlanReferralRow,
    CarePlanRow,
    CarePlanTaskRow,
)

LinkRow = CarePlanGoalRow | CarePlanTaskRow | CarePlanReferralRow | CarePlanContributorRow


@dataclass(frozen=True, slots=True)
class _PlanList:
    """One list on CarePlan and the link table that holds it."""

    field: str  # the CarePlan attribute
    row_type: type[LinkRow]
    plan: InstrumentedAttribute[str]
    position: InstrumentedAttribute[int]
    member: InstrumentedAttribute[str]

    @property
    def member_column(self) -> str:
        return self.member.key


_LISTS = (
    _PlanList(
        "goal_ids",
        CarePlanGoalRow,
        CarePlanGoalRow.care_plan_id,
        CarePlanGoalRow.position,
        CarePlanGoalRow.goal_id,
    ),
    _PlanList(
        "task_ids",
        CarePlanTaskRow,
        CarePlanTaskRow.care_plan_id,
        CarePlanTaskRow.position,
        CarePlanTaskRow.care_task_id,
    ),
    _PlanList(
        "referral_ids",
        CarePlanReferralRow,
        CarePlanReferralRow.care_plan_id,
        CarePlanReferralRow.position,
        CarePlanReferralRow.referral_id,
    ),
    _PlanList(
        "contributor_ids",
        CarePlanContributorRow,
        CarePlanContributorRow.care_plan_id,
        CarePlanContributorRow.position,
        CarePlanContributorRow.member_id,
    ),
)
_GOALS, _TASKS, _REFERRALS, _CONTRIBUTORS = _LISTS
_IN_CHUNK = 900  # ids per IN list: within what every driver accepts


class CarePlans(Repository[CarePlan, CarePlanRow]):
    def __init__(self, session: Session) -> None:
        super().__init__(session, kind=EntityKind.CARE_PLAN, row_type=CarePlanRow)

    def _to_columns(self, entity: CarePlan) -> dict[str, Any]:
        return {
            "id": entity.id,
            "patient_id": entity.patient_id,
            "status": entity.status.value,
            "title": entity.title,
            "narrative": entity.narrative,
            "enrollment_id": entity.enrollment_id,
            "author_id": entity.author_id,
            "start_on": entity.start,
            "end_on": entity.end,
            "problems": list(entity.problems),
        }

    def _to_entity(self, row: CarePlanRow) -> CarePlan:
        plan = self._plan_only(row)
        for plan_list in _LISTS:
            setattr(plan, plan_list.field, self._members(plan_list, row.id))
        return plan

    def get_many(self, local_ids: Iterable[str]) -> dict[str, CarePlan]:
        """Many plans by id: one query for the plans and one per list for all of them (the
        push reads a batch of plans at a time), instead of four per plan."""
        ids = sorted(set(local_ids))
        found: dict[str, CarePlan] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            rows = self._session.scalars(select(CarePlanRow).where(CarePlanRow.id.in_(chunk)))
            plans = {row.id: self._plan_only(row) for row in rows}
            if not plans:
                continue
            for plan_list in _LISTS:
                members = self._session.execute(
                    select(plan_list.plan, plan_list.member)
                    .where(plan_list.plan.in_(list(plans)))
                    .order_by(plan_list.plan, plan_list.position)
                )
                for plan_id, member in members:
                    getattr(plans[plan_id], plan_list.field).append(member)
            found.update(plans)
        return found

    def _plan_only(self, row: CarePlanRow) -> CarePlan:
        """The plan without its lists (each one empty)."""
        return CarePlan(
            id=row.id,
            patient_id=row.patient_id,
            status=CarePlanStatus(row.status),
            title=row.title,
            narrative=row.narrative,
            enrollment_id=row.enrollment_id,
            author_id=row.author_id,
            start=row.start_on,
            end=row.end_on,
            problems=list(row.problems),
        )

    def _members(self, plan_list: _PlanList, care_plan_id: str) -> list[str]:
        return list(
            self._session.scalars(
                select(plan_list.member)
                .where(plan_list.plan == care_plan_id)
                .order_by(plan_list.position)
            )
        )

    def _after_write(self, entity: CarePlan) -> None:
        # Lists are short; rewriting them whole is simpler than diffing and keeps positions dense.
        for plan_list in _LISTS:
            self._session.execute(delete(plan_list.row_type).where(plan_list.plan == entity.id))
            members: list[str] = getattr(entity, plan_list.field)
            if members:
                self._session.execute(
                    insert(plan_list.row_type),
                    [
                        {
                            "care_plan_id": entity.id,
                            "position": position,
                            plan_list.member_column: member,
                        }
                        for position, member in enumerate(members)
                    ],
                )

    def list_for_patient(self, patient_id: str) -> list[CarePlan]:
        return self._list(
            select(CarePlanRow)
            .where(CarePlanRow.patient_id == patient_id)
            .order_by(CarePlanRow.start_on, CarePlanRow.id)
        )

    def listing_goal(self, goal_id: str) -> list[CarePlan]:
        """The plans that list this goal: they point at it and follow it to the server."""
        return self._listing(_GOALS, goal_id)

    def listing_task(self, care_task_id: str) -> list[CarePlan]:
        return self._listing(_TASKS, care_task_id)

    def listing_referral(self, referral_id: str) -> list[CarePlan]:
        return self._listing(_REFERRALS, referral_id)

    def listing_contributor(self, member_id: str) -> list[CarePlan]:
        return self._listing(_CONTRIBUTORS, member_id)

    def _listing(self, plan_list: _PlanList, member_id: str) -> list[CarePlan]:
        plan_ids = select(plan_list.plan).where(plan_list.member == member_id)
        return self._list(
            select(CarePlanRow).where(CarePlanRow.id.in_(plan_ids)).order_by(CarePlanRow.id)
        )
