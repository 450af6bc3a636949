"""What fixes a patient's APCM tier on a given day: the chronic conditions on the APCM
enrollment then, and whether the patient is a Qualified Medicare Beneficiary then.

Where each fact lives, and why:

* QMB status is the patient's (``QmbPeriod``), not the enrollment's. It is a Medicare Savings
  Program eligibility the state decides for the beneficiary, it holds for every claim of the
  patient whatever the program or practitioner, and it starts and stops with eligibility
  redeterminations. Kept on an enrollment it would have to be entered again for a second APCM
  enrollment (a new billing practitioner) and could disagree between them.
* The conditions are the enrollment's (``Enrollment.conditions``, the references the
  practitioner manages under the program). Their history is a list of ``ConditionPeriod``: the
  days a condition was on the enrollment. A listed condition without any period counts from the
  enrollment's start, so enrollments written before periods existed keep their meaning; a
  condition no longer listed still counts on the days of its periods (removing it does not
  rewrite months already billed).

Periods are whole days, both ends included; ``end`` None means still in force.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from fhirbridge.domain.enrollment import Enrollment

__all__ = ["ConditionPeriod", "QmbPeriod", "conditions_on", "is_qmb_on"]


@dataclass(slots=True)
class QmbPeriod:
    """Days the patient is a Qualified Medicare Beneficiary (Medicare Savings Program)."""

    id: str
    patient_id: str
    start: date
    end: date | None = None

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(slots=True)
class ConditionPeriod:
    """Days a chronic condition (a ``Condition/...`` reference on the EHR) was on an
    enrollment."""

    id: str
    enrollment_id: str
    condition: str
    start: date
    end: date | None = None

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


def is_qmb_on(periods: Iterable[QmbPeriod], day: date) -> bool:
    return any(period.covers(day) for period in periods)


def conditions_on(
    enrollment: Enrollment, periods: Sequence[ConditionPeriod], day: date
) -> list[str]:
    """The enrollment's conditions in force on ``day``, listed ones first, in their order."""
    dated = {period.condition for period in periods}
    found = [
        condition
        for condition in enrollment.conditions
        if condition not in dated and enrollment.start <= day
    ]
    for period in sorted(periods, key=lambda p: (p.start, p.condition)):
        if period.covers(day) and period.condition not in found:
            found.append(period.condition)
    listed = {condition: index for index, condition in enumerate(enrollment.conditions)}
    return sorted(found, key=lambda c: (listed.get(c, len(listed)), c))
