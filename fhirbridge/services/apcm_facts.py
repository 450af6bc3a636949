"""The facts that fix an APCM tier, as the API edits them: a patient's QMB periods and an
enrollment's condition periods (see ``fhirbridge.domain.apcm`` for why each lives where it
does, and ``fhirbridge.billing.apcm`` for the tier day that reads them).

Each list is replaced whole. Periods are whole days, both ends included, ``end`` None for "still
in force"; a list is refused (422 naming ``periods[i].end`` or ``periods[i].start``) when a
period ends before it starts or overlaps another period of the same thing (QMB, or the same
condition), so the billing of a month never depends on the order periods were sent in.

Like every service, these flush and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from fhirbridge.domain.apcm import ConditionPeriod, QmbPeriod
from fhirbridge.persistence import Store
from fhirbridge.services.errors import FieldError, NotFound, Rejected

__all__ = [
    "NewPeriod",
    "condition_periods_of",
    "qmb_periods_of",
    "replace_condition_periods",
    "replace_qmb_periods",
]


@dataclass(frozen=True, slots=True)
class NewPeriod:
    start: date
    end: date | None = None
    condition: str | None = None  # for condition periods: "Condition/..."


def _new_id() -> str:
    return uuid.uuid4().hex


def _check(kind: str, periods: Sequence[NewPeriod]) -> None:
    errors: list[FieldError] = []
    for index, period in enumerate(periods):
        if period.end is not None and period.end < period.start:
            errors.append(FieldError(f"periods[{index}].end", "before the period's start"))
            continue
        for earlier in range(index):
            other = periods[earlier]
            if other.condition != period.condition:
                continue
            if other.end is not None and other.end < other.start:
                continue
            if period.start <= (other.end or date.max) and other.start <= (period.end or date.max):
                errors.append(FieldError(f"periods[{index}].start", f"overlaps periods[{earlier}]"))
                break
    if errors:
        raise Rejected(kind, errors)


def qmb_periods_of(store: Store, *, patient_id: str) -> list[QmbPeriod]:
    return store.apcm_facts.qmb_periods([patient_id]).get(patient_id, [])


def replace_qmb_periods(
    store: Store, *, patient_id: str, periods: Sequence[NewPeriod]
) -> list[QmbPeriod]:
    """The patient's QMB periods become ``periods``, oldest first."""
    _check("QMB periods", periods)
    stored = [
        QmbPeriod(_new_id(), patient_id, p.start, p.end)
        for p in sorted(periods, key=lambda p: p.start)
    ]
    store.apcm_facts.replace_qmb_periods(patient_id, stored)
    return stored


def condition_periods_of(store: Store, *, enrollment_id: str) -> list[ConditionPeriod]:
    return store.apcm_facts.condition_periods([enrollment_id]).get(enrollment_id, [])


def replace_condition_periods(
    store: Store, *, enrollment_id: str, periods: Sequence[NewPeriod]
) -> list[ConditionPeriod]:
    """The enrollment's condition periods become ``periods``, oldest first."""
    if store.enrollments.get(enrollment_id) is None:
        raise NotFound("enrollment", enrollment_id)
    errors = [
        FieldError(f"periods[{index}].condition", "must be a Condition/<id> reference")
        for index, p in enumerate(periods)
        if p.condition is None
        or not p.condition.startswith("Condition/")
        or p.condition == "Condition/"
    ]
    if errors:
        raise Rejected("condition periods", errors)
    _check("condition periods", periods)
    stored = [
        ConditionPeriod(_new_id(), enrollment_id, p.condition or "", p.start, p.end)
        for p in sorted(periods, key=lambda p: (p.start, p.condition or ""))
    ]
    store.apcm_facts.replace_condition_periods(enrollment_id, stored)
    return stored
