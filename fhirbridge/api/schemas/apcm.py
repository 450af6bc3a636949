"""Bodies of the APCM tier facts: a patient's QMB periods, an enrollment's condition periods."""

from __future__ import annotations

from pydantic import Field

from fhirbridge.api.schemas._base import Day, Incoming, Name, Outgoing
from fhirbridge.domain.apcm import ConditionPeriod, QmbPeriod

__all__ = [
    "ConditionPeriodIn",
    "ConditionPeriodsRead",
    "ConditionPeriodsUpdate",
    "QmbPeriodIn",
    "QmbPeriodsRead",
    "QmbPeriodsUpdate",
]

MAX_PERIODS = 100


class QmbPeriodIn(Incoming):
    start: Day
    end: Day | None = None


class QmbPeriodsUpdate(Incoming):
    """Every period the patient is (or was) a Qualified Medicare Beneficiary; replaces the
    list."""

    periods: list[QmbPeriodIn] = Field(max_length=MAX_PERIODS)


class QmbPeriodsRead(Outgoing):
    patient_id: str
    periods: list[QmbPeriodIn]

    @classmethod
    def of(cls, patient_id: str, periods: list[QmbPeriod]) -> QmbPeriodsRead:
        return cls(
            patient_id=patient_id,
            periods=[QmbPeriodIn(start=p.start, end=p.end) for p in periods],
        )


class ConditionPeriodIn(Incoming):
    condition: Name  # "Condition/<id>" on the EHR
    start: Day
    end: Day | None = None


class ConditionPeriodsUpdate(Incoming):
    """The days each chronic condition was on the enrollment; replaces the list. A condition
    of the enrollment with no period counts from the enrollment's start."""

    periods: list[ConditionPeriodIn] = Field(max_length=MAX_PERIODS)


class ConditionPeriodsRead(Outgoing):
    enrollment_id: str
    periods: list[ConditionPeriodIn]

    @classmethod
    def of(cls, enrollment_id: str, periods: list[ConditionPeriod]) -> ConditionPeriodsRead:
        return cls(
            enrollment_id=enrollment_id,
            periods=[
                ConditionPeriodIn(condition=p.condition, start=p.start, end=p.end) for p in periods
            ],
        )
