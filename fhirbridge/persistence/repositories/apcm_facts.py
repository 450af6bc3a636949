"""What fixes an APCM tier: patients' QMB periods and enrollments' condition periods.

Neither syncs to a FHIR server: they are billing facts kept beside the records that do. Each is
replaced whole per patient (QMB) or per enrollment (conditions): the lists are short, and the
API edits them as one list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from fhirbridge.domain.apcm import ConditionPeriod, QmbPeriod
from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import flush
from fhirbridge.persistence.tables import ConditionPeriodRow, QmbPeriodRow

__all__ = ["ApcmFacts"]

_IN_CHUNK = 900


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), _IN_CHUNK):
        yield ordered[start : start + _IN_CHUNK]


class ApcmFacts:
    def __init__(self, session: Session) -> None:
        self._session = session

    def qmb_periods(self, patient_ids: Iterable[str]) -> dict[str, list[QmbPeriod]]:
        """Each patient's QMB periods, oldest first (patients without any are absent)."""
        found: dict[str, list[QmbPeriod]] = {}
        for chunk in _chunks(patient_ids):
            rows = self._session.scalars(
                select(QmbPeriodRow)
                .where(QmbPeriodRow.patient_id.in_(chunk))
                .order_by(QmbPeriodRow.start_on, QmbPeriodRow.id)
            )
            for row in rows:
                found.setdefault(row.patient_id, []).append(
                    QmbPeriod(row.id, row.patient_id, row.start_on, row.end_on)
                )
        return found

    def replace_qmb_periods(self, patient_id: str, periods: Sequence[QmbPeriod]) -> None:
        self._session.execute(delete(QmbPeriodRow).where(QmbPeriodRow.patient_id == patient_id))
        if periods:
            self._session.execute(
                insert(QmbPeriodRow),
                [
                    {"id": p.id, "patient_id": patient_id, "start_on": p.start, "end_on": p.end}
                    for p in periods
                ],
            )
        flush(self._session, EntityKind.PATIENT_LINK, patient_id)

    def condition_periods(self, enrollment_ids: Iterable[str]) -> dict[str, list[ConditionPeriod]]:
        """Each enrollment's condition periods, oldest first (enrollments without any are
        absent)."""
        found: dict[str, list[ConditionPeriod]] = {}
        for chunk in _chunks(enrollment_ids):
            rows = self._session.scalars(
                select(ConditionPeriodRow)
                .where(ConditionPeriodRow.enrollment_id.in_(chunk))
                .order_by(ConditionPeriodRow.start_on, ConditionPeriodRow.id)
            )
            for row in rows:
                found.setdefault(row.enrollment_id, []).append(
                    ConditionPeriod(
                        row.id, row.enrollment_id, row.condition, row.start_on, row.end_on
                    )
                )
        return found

    def replace_condition_periods(
        self, enrollment_id: str, periods: Sequence[ConditionPeriod]
    ) -> None:
        self._session.execute(
            delete(ConditionPeriodRow).where(ConditionPeriodRow.enrollment_id == enrollment_id)
        )
        if periods:
            self._session.execute(
                insert(ConditionPeriodRow),
                [
                    {
                        "id": p.id,
                        "enrollment_id": enrollment_id,
                        "condition": p.condition,
                        "start_on": p.start,
                        "end_on": p.end,
                    }
                    for p in periods
                ],
            )
        flush(self._session, EntityKind.ENROLLMENT, enrollment_id)
